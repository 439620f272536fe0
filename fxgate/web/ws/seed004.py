"""Seed 004's ``/ws/market-data`` and ``/ws/trading`` over Tornado's WebSocket handler.

The sessions (``fxgate.protocol.seed004``) hold the protocol; this module owns
the handshake, the writer and the shared encoders. ``/ws/market-data`` takes a token
by query or header, or, when ``ws.anonymous_market_data`` is on, nobody's (limited to
the public market channels, ``ws.anonymous_connections_per_minute`` per address);
otherwise it refuses after the upgrade with an error and close 4001, so a browser's
client sees why. ``/ws/trading`` logs in with its first message (API key + signature).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from tornado.websocket import WebSocketHandler

from fxgate.domain.errors import Disconnect, Disconnects, ErrorCode
from fxgate.domain.roles import Role
from fxgate.domain.symbols import SymbolNames
from fxgate.hub.acks import Acks
from fxgate.hub.sink import Dialect, Sink
from fxgate.node import Node
from fxgate.plugins.channel import Principal
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.protocol.seed004.market_session import MarketDataSession
from fxgate.protocol.seed004.market_wire import MarketDataDialect
from fxgate.protocol.seed004.trading_session import ApiKeyAuth, TradingSession
from fxgate.protocol.seed004.trading_wire import TradingDialect
from fxgate.web.ws.canonical import ANONYMOUS, SocketBase, bearer_token
from fxgate.web.ws.framing import FramedDialect, framed
from fxgate.web.ws.writer import Flusher, FrameWriter


class FormSink:
    """The connection as the hub sees it for one symbol form: the writer's own
    ``deliver`` and ``kick`` (bound once, so the hot path makes the same single call)
    with the encoder of that form."""

    __slots__ = ("deliver", "dialect", "kick", "principal")

    def __init__(self, writer: FrameWriter, dialect: Dialect) -> None:
        self.principal: Principal = writer.principal
        self.dialect = dialect
        self.deliver: Callable[[bytes, object | None], None] = writer.deliver
        self.kick: Callable[[Disconnect], None] = writer.kick


@dataclass(frozen=True)
class Seed004Kit:
    """What every seed 004 connection of one app shares: one encoder per dialect and
    symbol form (so the hub encodes and frames an event once per form), the symbol
    names, the API-key login and the anonymous clients' connection rate."""

    names: SymbolNames
    known: frozenset[str]
    market: dict[bool, MarketDataDialect]
    market_framed: dict[bool, FramedDialect]
    trading: dict[bool, TradingDialect]
    trading_framed: dict[bool, FramedDialect]
    auth: ApiKeyAuth
    anonymous_rate: SlidingWindowCounter

    @classmethod
    def build(cls, node: Node, auth: ApiKeyAuth) -> Seed004Kit:
        specs = node.market.source.specs
        names = SymbolNames(specs.values())
        table = names.table()
        market = {f: MarketDataDialect(slashed=f, names=table) for f in (False, True)}
        trading = {f: TradingDialect(slashed=f, names=table) for f in (False, True)}
        return cls(
            names=names,
            known=frozenset(specs),
            market=market,
            market_framed={f: framed(d) for f, d in market.items()},
            trading=trading,
            trading_framed={f: framed(d) for f, d in trading.items()},
            auth=auth,
            anonymous_rate=SlidingWindowCounter(node.settings.ws.anonymous_connections_per_minute),
        )


class _Seed004Socket(SocketBase):
    def initialize(self, node: Node, flusher: Flusher, kit: Seed004Kit) -> None:  # type: ignore[override]
        super().initialize(node, flusher)
        self.kit = kit
        self.live: MarketDataSession | TradingSession | None = None

    def _writer(self, dialect: FramedDialect) -> FrameWriter:
        assert self.ws_connection is not None
        self.set_nodelay(True)
        stream = self.ws_connection.stream
        assert stream is not None
        self.writer = FrameWriter(
            stream,
            self.flusher,
            max_bytes=self.node.settings.ws.queue_max_bytes,
            kick=self.kick,
            principal=ANONYMOUS,
            dialect=dialect,
        )
        return self.writer

    async def on_message(self, message: str | bytes) -> None:
        if self.live is not None:
            await self.live.on_message(message)

    def resume_acks(self) -> Acks | None:
        return self.live.acks if isinstance(self.live, TradingSession) else None

    def on_close(self) -> None:
        self.unregister_live()
        if self.writer is not None:
            self.writer.close()
        if self.live is not None:
            self.live.close()
            self.node.sessions.discard(self.live)


class MarketDataSocket(_Seed004Socket):
    """Seed 004's ``/ws/market-data``: quotes, trades and the order book by symbol."""

    async def get(self, *args: Any, **kwargs: Any) -> None:
        ws = self.node.settings.ws
        anonymous = not self.node.stopping and bearer_token(self) is None
        if anonymous and ws.anonymous_market_data:  # noqa: SIM102 - one limit, one branch
            if not self.kit.anonymous_rate.hit(self.request.remote_ip or ""):
                self._refuse(ErrorCode.RATE_LIMIT_ERROR, Disconnects.TOO_MANY_CONNECTIONS.reason)
                return
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        kit = self.kit
        writer = self._writer(kit.market_framed[False])
        session = MarketDataSession(
            hub=self.node.hub,
            limits=self.node.settings.ws,
            conn=writer,
            timers=asyncio.get_running_loop(),
            names=kit.names,
            known=kit.known,
            # FormSink's deliver/kick are the writer's bound methods held as attributes,
            # which the Sink protocol's methods do not describe for mypy.
            sinks={False: writer, True: cast(Sink, FormSink(writer, kit.market_framed[True]))},
            encoders=kit.market,
        )
        self.live = session
        self.node.sessions.add(session)
        claims = self.claims
        sid = session.session_id
        if claims is not None:
            session.start(claims, Principal(claims.sub, claims.role, claims.tier, sid))
            self.register_live(claims, session.disconnect)
        elif self.node.settings.ws.anonymous_market_data:
            session.start(None, Principal("", Role.VIEWER, "anonymous", sid))
        else:
            session.refuse()


class TradingSocket(_Seed004Socket):
    """Seed 004's ``/ws/trading``: API-key login, orders and cancels, the user's updates."""

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.node.stopping:
            self._refuse(ErrorCode.SERVICE_UNAVAILABLE, "Server restarting")
            return
        # The login is the first message (API key + signature), never a bearer token.
        await WebSocketHandler.get(self, *args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        kit = self.kit
        writer = self._writer(kit.trading_framed[True])

        def use_form(slashed: bool) -> None:
            writer.dialect = kit.trading_framed[slashed]

        session = TradingSession(
            hub=self.node.hub,
            limits=self.node.settings.ws,
            conn=writer,
            timers=asyncio.get_running_loop(),
            names=kit.names,
            specs=self.node.market.source.specs,
            auth=kit.auth,
            desk=self.node.commands,  # the leader, with the redis bus
            connection_rate=self.node.connection_rate,
            encoders=kit.trading,
            use_form=use_form,
            ip=self.request.remote_ip or "",
            # Seed 004's client cannot send an offset: the node remembers (issue 8).
            resume=self.node.resume,
            # Listed as an API-key session (GET /auth/sessions, ``key_<id>``) once in.
            on_login=lambda s: self.register_live(s.claims, s.disconnect, api_key=s.api_key),
        )
        self.live = session
        self.node.sessions.add(session)
        session.start()


def seed004_routes(node: Node, flusher: Flusher, auth: ApiKeyAuth) -> list[tuple[Any, ...]]:
    kwargs = {"node": node, "flusher": flusher, "kit": Seed004Kit.build(node, auth)}
    return [
        (r"/ws/market-data/?", MarketDataSocket, kwargs),
        (r"/ws/trading/?", TradingSocket, kwargs),
    ]
