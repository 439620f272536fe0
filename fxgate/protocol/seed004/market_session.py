"""``/ws/market-data`` (seed 004): quotes, trades and the order book, by symbol.

A subscription is a hub subscription of the ``market-data``, ``market-trades`` or
``orderbook`` channel for one symbol; the session only maps the seed's names and symbol
forms onto it (docs/dialects.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import (
    AuthenticationError,
    Disconnects,
    FxgateError,
    RateLimitError,
    ValidationError,
)
from fxgate.domain.symbols import SymbolNames
from fxgate.hub.hub import Hub, Subscription
from fxgate.hub.sink import Sink
from fxgate.plugins.channel import Principal
from fxgate.protocol.seed004 import common
from fxgate.protocol.seed004 import market_wire as mwire
from fxgate.protocol.seed004.session import Seed004Session
from fxgate.protocol.session import Cancellable, Connection, Timers
from fxgate.services.auth.tokens import Claims


class MarketDataSession(Seed004Session):
    """``/ws/market-data``: quotes, trades and the order book, by symbol.

    ``sinks`` are the connection as the hub sees it, one per symbol form (``True``:
    ``BASE/QUOTE``), each with its own encoder, so an event is encoded once per form;
    ``encoders`` are the same encoders unframed, for snapshots.
    """

    def __init__(
        self,
        *,
        hub: Hub,
        limits: WsSettings,
        conn: Connection,
        timers: Timers,
        names: SymbolNames,
        known: Collection[str],
        sinks: Mapping[bool, Sink],
        encoders: Mapping[bool, mwire.MarketDataDialect],
    ) -> None:
        super().__init__(hub=hub, limits=limits, conn=conn, timers=timers)
        self.names = names
        #: The broker's symbols: anything else is refused at subscribe.
        self.known = known
        self.sinks = sinks
        self.encoders = encoders
        #: (hub channel, broker symbol, slashed) -> the subscription
        self.subs: dict[tuple[str, str, bool], Subscription] = {}
        self._expiry: Cancellable | None = None

    def start(
        self, claims: Claims | None, principal: Principal, clock: Callable[[], float] = time.time
    ) -> None:
        """Begin as ``principal``: the token's user (closed with 4001 when the token
        expires, as on every endpoint), or an anonymous viewer."""
        self.claims = claims
        self.principal = principal
        for sink in (self.conn, *self.sinks.values()):
            sink.principal = principal
        if claims is not None:
            self._expiry = self._timers.call_later(
                max(0.0, claims.exp - clock()), self.disconnect, Disconnects.TOKEN_EXPIRED
            )
        self.conn.send(mwire.connected(self.session_id, claims.sub if claims else None))

    def refuse(self) -> None:
        """No token, and anonymous clients are not allowed here: 4001 after telling."""
        exc = AuthenticationError(
            "Authentication required: connect with ?token=<jwt> (anonymous market data"
            " is off on this server)"
        )
        self.disconnect(Disconnects.AUTH_FAILED, notice=common.error(exc))

    async def _handle(self, msg: Mapping[str, Any], rid: str | None) -> None:
        cmd = mwire.parse(msg, rid)
        if isinstance(cmd, mwire.Ping):
            self.conn.send(common.pong(cmd.rid))
        elif isinstance(cmd, mwire.Subscribe):
            await self.subscribe(cmd)
        else:
            self.unsubscribe(cmd)

    async def subscribe(self, cmd: mwire.Subscribe) -> None:
        symbol, slashed = self.names.resolve(cmd.symbol)
        channel = mwire.CHANNELS[cmd.channel]
        key = (channel, symbol, slashed)
        if key in self.subs:
            self.conn.send(mwire.subscribed("subscribed", cmd.channel, cmd.symbol, cmd.rid))
            return
        if symbol not in self.known:
            raise ValidationError(
                "Unknown symbol", field="symbol", reason="unknown", details={"symbol": cmd.symbol}
            )
        if len(self.subs) >= self.limits.max_subscriptions:
            raise RateLimitError(
                "Too many subscriptions", details={"limit": self.limits.max_subscriptions}
            )
        sub = self.hub.make_subscription(self.sinks[slashed], channel, {"symbol": symbol})
        self.conn.hold()
        try:
            self.hub.add(sub)
            self.subs[key] = sub
            self.conn.send(mwire.subscribed("subscribed", cmd.channel, cmd.symbol, cmd.rid))
            await self._snapshot(sub, self.encoders[slashed])
        finally:
            self.conn.release()

    async def _snapshot(self, sub: Subscription, encoder: mwire.MarketDataDialect) -> None:
        assert self.principal is not None
        offsets = self.hub.snapshot_offsets(sub)
        try:
            items = await sub.channel.snapshot(self.principal, sub.filters)
        except FxgateError as exc:
            self.conn.send(common.error(exc))
            return
        for payload in items:
            envelope = self.hub.snapshot_envelope(sub, payload, offsets)
            message = encoder.encode_event(sub.channel, envelope)
            if message is not None:
                self.conn.send(message)

    def unsubscribe(self, cmd: mwire.Unsubscribe) -> None:
        symbol, _slashed = self.names.resolve(cmd.symbol)
        channel = mwire.CHANNELS[cmd.channel]
        found = False
        for form in (False, True):
            sub = self.subs.pop((channel, symbol, form), None)
            if sub is not None:
                self.hub.remove(sub)
                found = True
        if not found:
            raise ValidationError(
                "Not subscribed",
                field="symbol",
                reason="not_subscribed",
                details={"channel": cmd.channel, "symbol": cmd.symbol},
            )
        self.conn.send(mwire.subscribed("unsubscribed", cmd.channel, cmd.symbol, cmd.rid))

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        for sub in self.subs.values():
            self.hub.remove(sub)
        self.subs.clear()
        if self._expiry is not None:
            self._expiry.cancel()
