"""The object plugins receive: :class:`fxgate.plugins.api.PluginAPI`, made of the
node's parts and nothing else, so no plugin ever holds the node."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fxgate.config.settings import Settings
from fxgate.domain.events import Event
from fxgate.hub.hub import Hub
from fxgate.plugins.api import HealthReads, MarketReads, TradingReads


class NodeAPI:
    """Only the documented names are public; the hub (for ``ingest``'s validation),
    the bus's publish and the node's task set stay private."""

    __slots__ = ("_hub", "_publish", "_spawn", "health", "market", "settings", "trading", "version")

    def __init__(
        self,
        *,
        version: str,
        settings: Settings,
        trading: TradingReads,
        market: MarketReads,
        health: HealthReads,
        hub: Hub,
        publish: Callable[[Event], None],
        spawn: Callable[..., asyncio.Task[Any]],
    ) -> None:
        self.version = version
        self.settings = settings
        self.trading = trading
        self.market = market
        self.health = health
        self._hub = hub
        self._publish = publish
        self._spawn = spawn

    def publish(self, event: Event) -> None:
        self._publish(event)

    def ingest(self, channel: str, data: Any, *, user_id: str | None = None) -> None:
        self._publish(self._hub.event_for(channel, data, user_id=user_id))

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        return self._spawn(coro, name=name)
