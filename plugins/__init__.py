"""Built-in channel plugins, installed as ``fxgate_plugins`` (see DESIGN.md)."""
