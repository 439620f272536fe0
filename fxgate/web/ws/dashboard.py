"""``/ws/dashboard``: seed 000's dashboard over Tornado, with shared compressed frames.

The token comes with the upgrade (``?token=`` or ``Authorization: Bearer``): a missing
or bad one is a 401 before any socket exists, as seed 000's "JWT token validation at
connection" says. Everything after the upgrade is
:class:`~fxgate.protocol.dashboard.session.DashboardSession`'s; this module adds the
socket, the frame writer and the compression negotiation (:mod:`.deflate`).

Missed-message replay on reconnect (issue 8, item 6): :meth:`DashboardSocket.open`
hands the node's :class:`~fxgate.hub.resume.ResumeBook` to the session, whose feed
replays the user's missed trading events through the dashboard's own mapping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fxgate.hub.acks import Acks
from fxgate.node import Node
from fxgate.protocol.canonical import CANONICAL
from fxgate.protocol.dashboard.outgoing import Framer
from fxgate.protocol.dashboard.registry import DashboardHub
from fxgate.protocol.dashboard.session import DashboardSession
from fxgate.services import analytics
from fxgate.services.presenters import trade_payload
from fxgate.services.trading import TradingService
from fxgate.web.ws.canonical import ANONYMOUS, SocketBase
from fxgate.web.ws.deflate import (
    PLAIN,
    Offer,
    compressed_total,
    deflate_framer,
    first_offer,
    response_header,
)
from fxgate.web.ws.framing import framed
from fxgate.web.ws.writer import Flusher, FrameWriter

log = logging.getLogger(__name__)


class TradingReads:
    """What a dashboard feed reads when it starts, from the trading service."""

    def __init__(self, trading: TradingService) -> None:
        self.trading = trading

    async def summary(self, user_id: str) -> Mapping[str, Any]:
        perfs = await self.trading.performances(user_id, time.time(), ("ALL",))
        ccy = (await self.trading.account_terms(user_id)).currency
        return analytics.seed000_summary(perfs["ALL"], currency=ccy)

    async def recent_trades(self, user_id: str, n: int) -> list[Mapping[str, Any]]:
        deals = sorted(await self.trading.deals(user_id), key=analytics.deal_order)[-n:]
        return [
            trade_payload(d, self.trading.open_position(user_id, d.position_ticket)) for d in deals
        ]


class DashboardCollector(Collector):
    """``/metrics`` for the dashboards, read at scrape time."""

    def __init__(self, dashboards: Dashboards) -> None:
        self.dashboards = dashboards

    def collect(self) -> Iterator[Any]:
        hub = self.dashboards.hub
        feeds = len(hub.feeds) if hub is not None else 0
        batches = sum(t.batches for t in hub.market.tiers.values()) if hub is not None else 0
        yield GaugeMetricFamily(
            "fxgate_dashboard_feeds", "Users (per tier) with a /ws/dashboard open", value=feeds
        )
        yield CounterMetricFamily(
            "fxgate_dashboard_market_batches", "market_data batches built", value=batches
        )
        yield CounterMetricFamily(
            "fxgate_dashboard_frames_compressed",
            "Messages compressed (permessage-deflate), shared by their connections",
            value=compressed_total(),
        )


class Dashboards:
    """The application's one :class:`DashboardHub`, built on the first connection (it
    needs the running loop for its timers)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._hub: DashboardHub | None = None

    @property
    def hub(self) -> DashboardHub | None:
        return self._hub

    def get(self) -> DashboardHub:
        if self._hub is None:
            node = self.node
            self._hub = DashboardHub(
                hub=node.hub,
                settings=node.settings,
                reads=TradingReads(node.trading),
                usage=node.trading.usage,
                health=node.health,
                timers=asyncio.get_running_loop(),
                started_at=node.started_at,
                signal_ms=node.signals.timing.median_ms,
            )
        return self._hub


def _log_failure(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("dashboard connection could not start", exc_info=fut.exception())


class DashboardSocket(SocketBase):
    """Seed 000's ``/ws/dashboard``."""

    first_message_auth = False

    def initialize(  # type: ignore[override]
        self, node: Node, flusher: Flusher, dashboards: Dashboards
    ) -> None:
        super().initialize(node, flusher)
        self.dashboards = dashboards
        self.dash: DashboardSession | None = None
        self.framer: Framer = PLAIN
        self._offer: Offer | None = None
        self._starting: asyncio.Future[None] | None = None

    def get_compression_options(self) -> dict[str, Any] | None:
        # Enables Tornado's negotiation (and its decompression of client frames); our
        # frames are compressed by the shared framers instead of Tornado's compressor.
        return {} if self._offer is not None else None

    def set_header(self, name: str, value: Any) -> None:
        # Tornado echoes the accepted offer: put server_no_context_takeover, the promise
        # that makes frames shareable, in the RFC's form (see fxgate.web.ws.deflate).
        if name == "Sec-WebSocket-Extensions" and self._offer is not None:
            value = response_header(str(value))
        super().set_header(name, value)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        settings = self.node.settings.dashboard
        headers = self.request.headers
        offer = first_offer(headers.get("Sec-WebSocket-Extensions", ""))
        if offer is not None and settings.compression:
            self._offer = offer
            headers["Sec-WebSocket-Extensions"] = offer.header()
            wbits = offer.server_wbits
            if wbits >= 9:  # zlib has no raw deflate with a 256-byte window
                self.framer = deflate_framer(
                    wbits, settings.compression_level, settings.compression_threshold
                )
        elif "Sec-WebSocket-Extensions" in headers:
            del headers["Sec-WebSocket-Extensions"]
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        assert self.ws_connection is not None
        assert self.claims is not None
        self.set_nodelay(True)
        stream = self.ws_connection.stream
        assert stream is not None
        self.writer = FrameWriter(
            stream,
            self.flusher,
            max_bytes=self.node.settings.ws.queue_max_bytes,
            kick=self.kick,
            principal=ANONYMOUS,
            dialect=framed(CANONICAL),  # unused: the dashboard pushes framed messages
        )
        self.dash = DashboardSession(
            dash=self.dashboards.get(),
            claims=self.claims,
            transport=self.writer,
            framer=self.framer,
            settings=self.node.settings,
            timers=asyncio.get_running_loop(),
            resume=self.node.resume,
        )
        self.node.sessions.add(self.dash)
        self.register_live(self.claims, self.dash.disconnect)
        # The session replays what the user missed (``node.resume``) as it starts.
        self._starting = asyncio.ensure_future(self.dash.start())
        self._starting.add_done_callback(_log_failure)

    async def on_message(self, message: str | bytes) -> None:
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._starting)
        if self.dash is not None:
            await self.dash.on_message(message)

    def resume_acks(self) -> Acks | None:
        return self.dash.acks if self.dash is not None else None

    def delivered(self) -> bool:
        return self.dash is not None and self.dash.settled()

    def on_close(self) -> None:
        self.unregister_live()
        if self.writer is not None:
            self.writer.close()
        if self.dash is not None:
            self.dash.close()
            self.node.sessions.discard(self.dash)
