"""The node is assembled whole from the settings: every backend by name, every part
present, the plugins' channels in the hub, and a bad plugin refused before start."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from fxgate import hookimpl
from fxgate.app.assembly import build_node
from fxgate.app.backends import BROKERS, BUSES, STORES
from fxgate.config.settings import Settings
from fxgate.node import StartupError
from fxgate.plugins.api import Channel


@pytest.mark.parametrize(
    ("registry", "name"),
    [(r, n) for r in (STORES, BUSES, BROKERS) for n in r.backends],
    ids=lambda v: v if isinstance(v, str) else v.key,
)
def test_every_registered_backend_loads(
    registry: object, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in a builder's ``module:function`` would otherwise surface only for the
    operator who picks that backend."""
    settings = Settings()
    if name == "mt5":  # it needs its owner, and MetaTrader5 (the fake, on Linux)
        settings = Settings(mt5={"owner": "u_1"})  # type: ignore[arg-type]
        monkeypatch.syspath_prepend(str(Path(__file__).parent / "fake_mt5"))
    assert registry.problems(name, settings) == []  # type: ignore[attr-defined]
    assert callable(registry.builder(name))  # type: ignore[attr-defined]


async def test_a_built_node_has_every_part_and_the_builtin_channels(tmp_path: Path) -> None:
    node = build_node(Settings(state_dir=tmp_path, disable_plugins=["analytics"]))
    assert set(node.hub.channels) == {
        "trades", "positions", "orders", "market-data", "alerts", "system", "account", "logs",
        "signals", "news", "orderbook", "market-trades",
    }  # fmt: skip
    assert node.api.trading is node.trading
    assert node.api.market is node.market
    assert node.api.health is node.health
    assert node.api.signals is node.signals
    assert set(node.health.report.components) == set()  # checks run once started
    await node.start()
    try:
        assert {"database", "broker", "bus"} <= set(node.health.report.components)
        assert node.health.ready
    finally:
        await node.stop()


def test_two_plugins_defining_one_channel_stop_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = types.ModuleType("dup_channel_plugin")

    class Trades(Channel):
        name = "trades"
        message_type = "trade"

    @hookimpl
    def register_channels() -> list[Channel]:
        return [Trades()]

    mod.register_channels = register_channels  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dup_channel_plugin", mod)
    with pytest.raises(StartupError, match="two plugins define the channel 'trades'"):
        build_node(Settings(state_dir=tmp_path, plugins=["dup_channel_plugin"]))
    assert not (tmp_path / "master.key").exists()
