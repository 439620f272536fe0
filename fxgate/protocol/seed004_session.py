"""Seed 004's two sessions over the hub: ``/ws/market-data`` and ``/ws/trading``.

Like the canonical :class:`fxgate.protocol.session.Session` they do no I/O: the
transport hands them frames and they answer through the ``Connection`` they were
given, keeping time through the injected ``Timers``. They hold no trading logic: a
subscription is a hub subscription, an order goes to the ``TradingService`` that REST
uses (risk checks, ``clientOrderId`` idempotency, audit), an API-key login is the REST
login's signature check. Every client-caused failure is an error message and the
connection stays, except a refused login (4001), a flood (4029) and shutdown (1001,
after the seed-004 shutdown notice).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import Any, Protocol

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import (
    AuthenticationError,
    AuthorizationError,
    Disconnect,
    Disconnects,
    FxgateError,
    RateLimitError,
    ValidationError,
)
from fxgate.domain.market import SymbolSpec
from fxgate.domain.roles import Role
from fxgate.domain.symbols import SymbolNames
from fxgate.domain.trading import Order, OrderRequest, OrderType, Side, TimeInForce
from fxgate.hub.hub import Hub, Subscription
from fxgate.hub.sink import Sink
from fxgate.plugins.channel import Principal
from fxgate.protocol import seed004_common as common
from fxgate.protocol import seed004_market as mwire
from fxgate.protocol import seed004_trading as twire
from fxgate.protocol.guard import InputGuard, Verdict, check_size
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.protocol.session import Cancellable, Connection, Timers
from fxgate.services.auth.tokens import Claims

log = logging.getLogger(__name__)

#: The per-user channels ``/ws/trading`` streams to its user after login.
TRADING_CHANNELS = ("orders", "positions", "trades")


class _Base:
    """Limits, errors, closing: what both sessions do alike."""

    def __init__(self, *, hub: Hub, limits: WsSettings, conn: Connection, timers: Timers) -> None:
        self.hub = hub
        self.limits = limits
        self.conn = conn
        self.session_id = "session_" + uuid.uuid4().hex[:16]
        self.principal: Principal | None = None
        #: What the node's kicks look at (disabled users, retired signing keys).
        self.claims: Claims | None = None
        self._timers = timers
        self._guard = InputGuard(limits, timers.time)
        self.closing = False
        self.closed = False

    def disconnect(self, disconnect: Disconnect, notice: bytes | None = None) -> None:
        """Close for ``disconnect``. Shutdown is announced in seed 004's own format,
        whatever notice the caller (written for the canonical dialect) passed."""
        if self.closed or self.closing:
            return
        self.closing = True
        if disconnect is Disconnects.SHUTDOWN:
            notice = common.shutdown_notice()
        if notice is not None:
            self.conn.send(notice)
        self.conn.kick(disconnect)

    def shutdown_notice(self, canonical_notice: bytes) -> bytes:
        """Seed 004's own notice before close 1001 (``fxgate.ops.serve``)."""
        return common.shutdown_notice()

    async def on_message(self, raw: str | bytes) -> None:
        if self.closed or self.closing:
            return
        verdict = self._guard.admit()
        if verdict is not Verdict.OK:
            if verdict is Verdict.KICK:
                self.disconnect(Disconnects.RATE_LIMITED)
            elif verdict is Verdict.TELL:
                limit = self.limits.max_messages_per_second
                exc = RateLimitError(
                    "Rate limit exceeded", details={"limit": limit, "per": "second"}
                )
                self.conn.send(common.error(exc))
            return
        rid: str | None = None
        try:
            check_size(raw, self.limits)
            msg = common.load_object(raw)
            rid = common.request_id(msg)
            await self._handle(msg, rid)
        except FxgateError as exc:
            self.conn.send(common.error(exc, rid))
        except Exception:
            log.exception("seed 004 session error", extra={"session": self.session_id})
            self.conn.send(common.error(FxgateError("Internal error"), rid))

    async def _handle(self, msg: Mapping[str, Any], rid: str | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


class MarketDataSession(_Base):
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


# -- /ws/trading ---------------------------------------------------------------------------


class ApiKeyAuth(Protocol):
    async def verify_api_key(
        self, api_key: str, signature: str, timestamp: int, *, ip: str = "", via: str = ""
    ) -> Any:
        """The user (``id``, ``role``, ``tier``) whose key signed the login string;
        ``AuthenticationError`` for a bad, stale or replayed signature."""


class OrderDesk(Protocol):
    """The trading service's order calls (``fxgate.services.trading.TradingService``)."""

    async def place_order(
        self, user_id: str, request: OrderRequest, *, actor: str | None = None
    ) -> tuple[Order, bool]: ...

    async def cancel_order(
        self, user_id: str, order_id: str, *, actor: str | None = None
    ) -> Order: ...


class ResumeMarks(Protocol):
    """Where each of a user's streams stood when their last connection closed: the hook
    for the server-side replay of missed trading events (issue 8 item 6, DESIGN.md
    "Clients that cannot send an offset"), in the shape of the Socket.IO work's
    ``ResumeBook`` (``fxgate.hub.resume``, branch ``socketio``), as ``/ws`` takes it.
    Without one, a reconnecting client gets no replay and reads the REST lists."""

    def opened(self, user_id: str) -> None: ...

    def closed(self, user_id: str, now: float) -> None: ...

    def since(self, user_id: str, channel: str, now: float) -> tuple[int, str] | None: ...


class TradingSession(_Base):
    """``/ws/trading``: API-key login, then orders and cancels, and the user's updates.

    ``use_form`` switches the connection's update encoder to the symbol form the
    client writes (``BASE/QUOTE`` until its first order says otherwise); ``encoders``
    are the unframed encoders of both forms, for answers.
    """

    def __init__(
        self,
        *,
        hub: Hub,
        limits: WsSettings,
        conn: Connection,
        timers: Timers,
        names: SymbolNames,
        specs: Mapping[str, SymbolSpec],
        auth: ApiKeyAuth,
        desk: OrderDesk,
        connection_rate: SlidingWindowCounter,
        encoders: Mapping[bool, twire.TradingDialect],
        use_form: Callable[[bool], None],
        ip: str = "",
        clock: Callable[[], float] = time.time,
        resume: ResumeMarks | None = None,
    ) -> None:
        super().__init__(hub=hub, limits=limits, conn=conn, timers=timers)
        self.names = names
        self.specs = specs
        self._resume = resume
        self._opened = False
        self.auth = auth
        self.desk = desk
        self.encoders = encoders
        self._use_form = use_form
        self._slashed = True
        self._connection_rate = connection_rate
        self._ip = ip
        self._clock = clock
        self.subs: list[Subscription] = []
        self._deadline: Cancellable | None = None

    def start(self) -> None:
        """Nothing is sent before the login; it must come within ``ws.auth_timeout``."""
        self._deadline = self._timers.call_later(
            self.limits.auth_timeout, self.disconnect, Disconnects.AUTH_TIMEOUT
        )

    async def _handle(self, msg: Mapping[str, Any], rid: str | None) -> None:
        if self.principal is None and msg.get("type") not in ("auth", "ping"):
            raise AuthenticationError(
                "Authenticate first: {type: auth, api_key, signature, timestamp}"
            )
        cmd = twire.parse(msg, rid)
        if isinstance(cmd, twire.Ping):
            self.conn.send(common.pong(cmd.rid))
            return
        if isinstance(cmd, twire.Auth):
            await self.login(cmd)
            return
        assert self.principal is not None
        if not self.principal.role.at_least(Role.TRADER):
            raise AuthorizationError("Permission denied", details={"requiredRole": "trader"})
        if isinstance(cmd, twire.PlaceOrder):
            await self.place(cmd)
        else:
            await self.cancel(cmd)

    async def login(self, cmd: twire.Auth) -> None:
        if self.principal is not None:
            raise ValidationError("Already authenticated", field="type", reason="repeated")
        try:
            user = await self.auth.verify_api_key(
                cmd.api_key, cmd.signature, cmd.timestamp, ip=self._ip, via="ws/trading"
            )
        except AuthenticationError as exc:
            self.disconnect(Disconnects.AUTH_FAILED, notice=common.error(exc, cmd.rid))
            return
        if self.closed or self.closing:
            return
        if not self._connection_rate.hit(user.id):
            self.disconnect(Disconnects.TOO_MANY_CONNECTIONS)
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        role = Role(user.role)
        now = int(self._clock())
        # No token: the signature proved the key. ``kid`` is empty (no signing key to
        # retire); a disabled user is still kicked by ``sub``.
        self.claims = Claims(user.id, role, user.tier, now, 0, "", "")
        self.principal = Principal(user.id, role, user.tier, self.session_id)
        self.conn.principal = self.principal
        if self._resume is not None:
            self._resume.opened(user.id)
            self._opened = True
        # Live events wait behind the answer and the replay (if any), in order.
        self.conn.hold()
        try:
            for name in TRADING_CHANNELS:
                if name in self.hub.channels:
                    sub = self.hub.make_subscription(self.conn, name, None)
                    self.hub.add(sub)
                    self.subs.append(sub)
            self.conn.send(twire.auth_ok(user.id, self.session_id, cmd.rid))
            self._replay(user.id)
        finally:
            self.conn.release()

    def _replay(self, user_id: str) -> None:
        """What the user missed since their last connection closed, as updates."""
        if self._resume is None:
            return
        encoder = self.encoders[self._slashed]
        now = self._timers.time()
        for sub in self.subs:
            since = self._resume.since(user_id, sub.channel.name, now)
            replay = self.hub.replay(sub, since) if since is not None else None
            for envelope in replay.envelopes if replay is not None else ():
                payload = encoder.encode_event(sub.channel, envelope)
                if payload is not None:
                    self.conn.send(payload)

    def _form(self, written: str) -> tuple[str, bool]:
        symbol, slashed = self.names.resolve(written)
        if slashed != self._slashed:
            self._slashed = slashed
            self._use_form(slashed)
        return symbol, slashed

    async def place(self, cmd: twire.PlaceOrder) -> None:
        assert self.principal is not None
        symbol, slashed = self._form(cmd.symbol)
        _check_digits(self.specs.get(symbol), cmd)
        kind = OrderType(cmd.type)
        request = OrderRequest(
            symbol=symbol,
            type=kind,
            side=Side(cmd.side),
            volume=cmd.quantity,
            price=cmd.price,
            stop_price=cmd.stop_price,
            stop_loss=cmd.stop_loss,
            take_profit=cmd.take_profit,
            time_in_force=TimeInForce(cmd.time_in_force),
            client_order_id=cmd.client_order_id,
            strategy_id=cmd.strategy_id,
            comment=cmd.comment,
        )
        try:
            order, created = await self.desk.place_order(self.principal.user_id, request)
        except FxgateError as exc:
            _seed_field_names(exc)
            raise
        extra = {} if created else {"duplicate": True}
        self.conn.send(self.encoders[slashed].answer("order_placed", order, cmd.rid, **extra))

    async def cancel(self, cmd: twire.CancelOrder) -> None:
        assert self.principal is not None
        order = await self.desk.cancel_order(self.principal.user_id, cmd.order_id)
        self.conn.send(self.encoders[self._slashed].answer("order_cancelled", order, cmd.rid))

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        for sub in self.subs:
            self.hub.remove(sub)
        self.subs.clear()
        if self._deadline is not None:
            self._deadline.cancel()
        if self._opened and self._resume is not None and self.principal is not None:
            self._resume.closed(self.principal.user_id, self._timers.time())


def _check_digits(spec: SymbolSpec | None, cmd: twire.PlaceOrder) -> None:
    """A price finer than the symbol quotes is refused, as REST refuses it (not
    rounded: a limit at 1.085004 on a 5-digit symbol is a client bug)."""
    if spec is None:
        return  # the trading service names the unknown symbol
    prices: dict[str, Decimal | None] = {
        "price": cmd.price,
        "stopPrice": cmd.stop_price,
        "stopLoss": cmd.stop_loss,
        "takeProfit": cmd.take_profit,
    }
    for name, value in prices.items():
        exponent = value.as_tuple().exponent if value is not None else 0
        if isinstance(exponent, int) and -exponent > spec.digits:
            raise ValidationError(
                f"More decimals than {spec.symbol}'s {spec.digits} digits",
                field=name,
                reason="decimal_places",
            )


def _seed_field_names(exc: FxgateError) -> None:
    """The broker names the order's size ``volume``; seed 004 calls it ``quantity``."""
    details = exc.details
    if isinstance(details, dict) and details.get("field") == "volume":
        exc.details = {**details, "field": "quantity"}
