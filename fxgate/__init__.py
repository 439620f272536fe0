"""fxgate: a real-time trading gateway between a broker and traders' dashboards."""

import pluggy

__version__ = "0.1.0"

#: Marker for plugin hook implementations: ``@fxgate.hookimpl``.
hookimpl = pluggy.HookimplMarker("fxgate")

__all__ = ["__version__", "hookimpl"]
