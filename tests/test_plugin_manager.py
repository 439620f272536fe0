"""The plugin manager factory: built-ins, blocking, config modules, typos."""

from __future__ import annotations

import sys
import types

import pytest

from fxgate import hookimpl
from fxgate.plugins.manager import BUILTIN_PLUGINS, PluginError, make_plugin_manager


def channel_names(pm: object) -> set[str]:
    # The channels keep the views they read; registering them reads none.
    api = types.SimpleNamespace(trading=object(), market=object(), health=object())
    names: set[str] = set()
    for result in pm.hook.register_channels(api=api):  # type: ignore[attr-defined]
        names.update(ch.name for ch in result)
    return names


def test_builtins_define_the_seed_channels() -> None:
    pm = make_plugin_manager(entry_points=False)
    assert channel_names(pm) == {
        "trades", "positions", "orders", "market-data", "alerts", "analytics", "system", "account",
        "logs", "signals", "news", "orderbook", "market-trades",
    }  # fmt: skip
    assert set(BUILTIN_PLUGINS) <= {name for name, _ in pm.list_name_plugin()}


def test_a_builtin_can_be_disabled() -> None:
    pm = make_plugin_manager(disabled=["alerts", "analytics"], entry_points=False)
    assert "alerts" not in channel_names(pm)
    assert "analytics" not in channel_names(pm)
    assert "trades" in channel_names(pm)


def test_modules_from_the_config_are_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("cfg_plugin")

    @hookimpl
    def register_channels(api: object) -> list[object]:
        from fxgate.plugins.api import Channel

        class C(Channel):
            name = "from-config"
            message_type = "x"

        return [C()]

    mod.register_channels = register_channels  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cfg_plugin", mod)
    pm = make_plugin_manager(modules=["cfg_plugin"], entry_points=False)
    assert "from-config" in channel_names(pm)


def test_a_misspelt_hook_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("typo_plugin")

    @hookimpl
    def register_channel(api: object) -> list[object]:  # missing "s"
        return []

    mod.register_channel = register_channel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "typo_plugin", mod)
    with pytest.raises(PluginError, match="register_channel"):
        make_plugin_manager(modules=["typo_plugin"], entry_points=False)


def test_an_unimportable_module_is_named() -> None:
    with pytest.raises(PluginError, match="no_such_module_xyz"):
        make_plugin_manager(modules=["no_such_module_xyz"], entry_points=False)
