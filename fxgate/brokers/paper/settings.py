"""The paper broker's terms: the ``[paper]`` section of the configuration.

There is one definition, :class:`fxgate.config.settings.PaperSettings`, so that what the
operator writes in ``fxgate.toml`` is exactly what the engine runs with; this module
names it where the paper broker's own modules look for it.
"""

from fxgate.config.settings import PaperSettings

__all__ = ["PaperSettings"]
