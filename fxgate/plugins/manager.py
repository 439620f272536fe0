"""The plugin manager, built in a factory (never at import time).

Order of registration, as pytest and Datasette do it: the built-in plugins of
``fxgate_plugins`` by name (each can be disabled in the config), then third-party
packages of the entry-point group ``fxgate.plugins``, then modules named in the
config's ``plugins`` list. ``check_pending`` rejects an implementation of a hook that
does not exist (usually a typo) at start-up.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from typing import Any

import pluggy

from fxgate.plugins import hookspecs

ENTRY_POINT_GROUP = "fxgate.plugins"

#: Built-in plugins: name (what ``disable_plugins`` takes) -> module.
BUILTIN_PLUGINS: dict[str, str] = {
    "trades": "fxgate_plugins.trades",
    "positions": "fxgate_plugins.positions",
    "orders": "fxgate_plugins.orders",
    "market-data": "fxgate_plugins.market_data",
    "alerts": "fxgate_plugins.alerts",
    "analytics": "fxgate_plugins.analytics",
    "system": "fxgate_plugins.system",
    "account": "fxgate_plugins.account",
    "logs": "fxgate_plugins.logs",
    "signals": "fxgate_plugins.signals",
    "news": "fxgate_plugins.news",
    "orderbook": "fxgate_plugins.orderbook",
    "market-trades": "fxgate_plugins.market_trades",
}


class PluginError(Exception):
    """A plugin could not be loaded; the message names it."""


def make_plugin_manager(
    *, disabled: Iterable[str] = (), modules: Iterable[str] = (), entry_points: bool = True
) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("fxgate")
    pm.add_hookspecs(hookspecs)
    blocked = set(disabled)
    for name in blocked:
        pm.set_blocked(name)
    for name, modname in BUILTIN_PLUGINS.items():
        if name not in blocked:
            pm.register(importlib.import_module(modname), name=name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for modname in modules:
        if modname in blocked:
            continue
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:
            raise PluginError(f"plugin module {modname!r} could not be imported: {exc}") from exc
        if pm.get_plugin(modname) is None:
            pm.register(module, name=modname)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return pm


async def await_me_maybe(value: Any) -> Any:
    """Hooks may be sync or async (Datasette's idiom)."""
    if callable(value):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    return value
