"""The one check of the settings beyond their types, shared by ``fxgate config check``
and start-up, so the two can never disagree about a configuration.

Pydantic has already refused unknown keys and ill-typed values; this finds what only
fxgate knows: backend names that are unknown or not installed, a backend's own settings
(unknown paper symbols, a MongoDB store without a URI), plugins that cannot be loaded.
Each problem is one line naming its key.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from fxgate.app.backends import BROKERS, BUSES, STORES
from fxgate.config.settings import DASHBOARD_TYPES, Settings
from fxgate.plugins.manager import (
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    PluginError,
    make_plugin_manager,
)


def problems(settings: Settings, *, plugins: bool = True) -> list[str]:
    """Everything wrong with ``settings``, one line each; empty when it can run.

    ``plugins=False`` skips loading the plugins (the caller brings its own manager).
    """
    found = [
        *STORES.problems(settings.store.backend, settings),
        *BUSES.problems(settings.bus.backend, settings),
        *BROKERS.problems(settings.broker.backend, settings),
    ]
    found.extend(_unknown_disabled(settings))
    found.extend(_workers(settings))
    found.extend(_tiers(settings))
    if plugins:
        try:
            make_plugin_manager(disabled=settings.disable_plugins, modules=settings.plugins)
        except PluginError as exc:
            found.append(f"plugins: {exc}")
    return found


def _unknown_disabled(settings: Settings) -> list[str]:
    """A misspelt name in ``disable_plugins`` would leave its channel on, silently."""
    known = {
        *BUILTIN_PLUGINS,
        *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)),
        *settings.plugins,
    }
    unknown = [name for name in settings.disable_plugins if name not in known]
    if unknown:
        return [f"disable_plugins: unknown plugins {unknown}; known: {sorted(known)}"]
    return []


def _workers(settings: Settings) -> list[str]:
    """Each worker has its own hub: only the redis bus carries one worker's events to
    the others' clients (and keeps one broker for all of them)."""
    if settings.server.workers > 1 and settings.bus.backend != "redis":
        return [
            f"server.workers = {settings.server.workers}: more than one worker needs"
            f' bus.backend = "redis" (got {settings.bus.backend!r})'
        ]
    return []


def _tiers(settings: Settings) -> list[str]:
    """Tiers naming dashboard types that do not exist, or a default tier that does not."""
    found = []
    if settings.dashboard.default_tier not in settings.tiers:
        found.append(
            f"dashboard.default_tier: {settings.dashboard.default_tier!r} is not one of"
            f" [tiers] ({', '.join(sorted(settings.tiers))})"
        )
    for name, tier in settings.tiers.items():
        unknown = sorted(set(tier.types) - set(DASHBOARD_TYPES))
        if unknown:
            found.append(
                f"tiers.{name}.types: unknown types {unknown}; known: {list(DASHBOARD_TYPES)}"
            )
    return found
