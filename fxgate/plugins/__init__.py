"""Plugin machinery: hook specifications, the channel API and the plugin manager factory."""
