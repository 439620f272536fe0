"""Configuration: defaults, the TOML file and ``FXGATE_…`` overrides."""

from fxgate.config.settings import Settings, describe_error, load_settings

__all__ = ["Settings", "describe_error", "load_settings"]
