"""The object plugins receive: :class:`fxgate.plugins.api.PluginAPI`, made of the
node's parts and nothing else, so no plugin ever holds the node."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any

from fxgate.config.settings import Settings
from fxgate.domain.errors import FxgateError
from fxgate.domain.events import Event
from fxgate.hub.hub import Hub
from fxgate.plugins.api import HealthReads, MarketReads, SignalReads, TradingReads
from fxgate.plugins.channel import Channel

log = logging.getLogger(__name__)


class NodeAPI:
    """Only the documented names are public; the hub (for ``ingest``'s validation),
    the bus's publish and the node's task set stay private."""

    __slots__ = (
        "_hub",
        "_publish",
        "_spawn",
        "health",
        "market",
        "settings",
        "signals",
        "trading",
        "version",
    )

    def __init__(
        self,
        *,
        version: str,
        settings: Settings,
        trading: TradingReads,
        market: MarketReads,
        health: HealthReads,
        signals: SignalReads,
        hub: Hub,
        publish: Callable[[Event], None],
        spawn: Callable[..., asyncio.Task[Any]],
    ) -> None:
        self.version = version
        self.settings = settings
        self.trading = trading
        self.market = market
        self.health = health
        self.signals = signals
        self._hub = hub
        self._publish = publish
        self._spawn = spawn

    def publish(self, event: Event) -> None:
        self._publish(event)

    def ingest(self, channel: str, data: Any, *, user_id: str | None = None) -> Awaitable[None]:
        event = self._hub.event_for(channel, data, user_id=user_id)
        ch = self._hub.channels[channel]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Retrieved here, so that a caller who does not await it gets no "exception
        # never retrieved" traceback; one who awaits still gets the exception.
        done.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        if not ch.keeps:
            self._publish(event)
            done.set_result(None)
        else:
            self._spawn(self._keep_then_publish(ch, event, done), name=f"ingest-{channel}")
        return done

    async def _keep_then_publish(
        self, ch: Channel, event: Event, done: asyncio.Future[None]
    ) -> None:
        """Every record is written before it is announced (DESIGN.md)."""
        try:
            kept = await ch.keep(event)
        except asyncio.CancelledError:
            done.cancel()  # shutdown: whoever awaits is told, not left waiting
            raise
        except FxgateError as exc:  # a conflict, the store away: the publisher's to handle
            log.warning("%s event not kept: %s", ch.name, exc.message)
            done.set_exception(exc)
            return
        except Exception as exc:
            log.exception("%s event not kept", ch.name)
            done.set_exception(exc)
            return
        self._publish(kept)
        done.set_result(None)

    def recent(self, channel: str, streams: Iterable[str], limit: int) -> list[Mapping[str, Any]]:
        return self._hub.recent(channel, streams, limit)

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        return self._spawn(coro, name=name)
