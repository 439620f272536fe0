"""``/ws/trading`` (seed 004): API-key login, orders and cancels, the user's updates.

The login is the REST API-key login's signature check (``SessionService.verify_api_key``);
an order goes to the ``TradingService`` REST uses (risk checks, ``clientOrderId``
idempotency, audit). Docs: docs/dialects.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import (
    AuthenticationError,
    AuthorizationError,
    Disconnects,
    FxgateError,
    ValidationError,
)
from fxgate.domain.market import SymbolSpec
from fxgate.domain.roles import Role
from fxgate.domain.symbols import SymbolNames
from fxgate.domain.trading import Order, OrderRequest, OrderType, Side, TimeInForce
from fxgate.hub.acks import Acks
from fxgate.hub.hub import Hub, Subscription
from fxgate.hub.resume import LateReceiver, missed_late
from fxgate.plugins.channel import Principal
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.protocol.seed004 import common
from fxgate.protocol.seed004 import trading_wire as twire
from fxgate.protocol.seed004.session import Seed004Session
from fxgate.protocol.session import Cancellable, Connection, Timers
from fxgate.services.auth.tokens import Claims

#: The per-user channels ``/ws/trading`` streams to its user after login.
TRADING_CHANNELS = ("orders", "positions", "trades")


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

    def opened(self, user_id: str, conn: LateReceiver | None = None) -> None: ...

    def closed(
        self,
        user_id: str,
        now: float,
        acked: Mapping[str, tuple[int, str]] | None = None,
        conn: LateReceiver | None = None,
    ) -> None: ...

    def began(self, conn: LateReceiver) -> None:
        """``conn`` subscribed (its ``Acks.start`` is set): late events owed meanwhile."""

    def positions(self, user_id: str) -> dict[str, tuple[int, str]]: ...

    def since(self, user_id: str, channel: str, now: float) -> tuple[int, str] | None: ...

    async def load(self, user_id: str, now: float) -> None:
        """Bring the user's mark from where it is shared (another node, a restart)."""


class TradingSession(Seed004Session):
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
        on_login: Callable[[TradingSession], None] | None = None,
    ) -> None:
        super().__init__(hub=hub, limits=limits, conn=conn, timers=timers)
        self.names = names
        self.specs = specs
        self._resume = resume
        self._opened = False
        #: What the client provably read (the transport feeds it pings and pongs).
        self.acks: Acks | None = None
        self.auth = auth
        self.desk = desk
        self.encoders = encoders
        self._use_form = use_form
        self._slashed = True
        self._connection_rate = connection_rate
        self._ip = ip
        self._clock = clock
        self.subs: list[Subscription] = []
        #: The API key id the socket logged in with; ``on_login`` is told once it has.
        self.api_key: str | None = None
        self._on_login = on_login
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
        self.api_key = cmd.api_key
        if self._on_login is not None:
            self._on_login(self)
        if self._resume is not None:
            await self._resume.load(user.id, self._timers.time())
            if self.closed or self.closing:
                return
            self._resume.opened(user.id, self)
            self._opened = True
            self.acks = Acks(partial(self._resume.positions, user.id))
        # Live events wait behind the answer and the replay (if any), in order.
        self.conn.hold()
        try:
            for name in TRADING_CHANNELS:
                if name in self.hub.channels:
                    sub = self.hub.make_subscription(self.conn, name, None)
                    self.hub.add(sub)
                    self.subs.append(sub)
            self.conn.send(twire.auth_ok(user.id, self.session_id, cmd.rid))
            replayed = self._replay(user.id)
        finally:
            self.conn.release()
        if self.acks is not None:
            self.acks.settled(replayed)
            if self._resume is not None:
                self._resume.began(self)

    def _replay(self, user_id: str) -> dict[str, tuple[int, str]]:
        """What the user missed since their last connection closed, as updates; the
        channels replayed, from where."""
        replayed: dict[str, tuple[int, str]] = {}
        if self._resume is None:
            return replayed
        encoder = self.encoders[self._slashed]
        now = self._timers.time()
        for sub in self.subs:
            since = self._resume.since(user_id, sub.channel.name, now)
            if since is not None:
                replayed[sub.channel.name] = since
            replay = self.hub.replay(sub, since) if since is not None else None
            for envelope in replay.envelopes if replay is not None else ():
                payload = encoder.encode_event(sub.channel, envelope)
                if payload is not None:
                    self.conn.send(payload)
        return replayed

    def replay_late(self, channel: str, since: tuple[int, str], upto: int) -> None:
        """What the dead connection this one replaced did not deliver, when it closes
        (``fxgate.hub.resume``, a reconnect before the close): this socket sends no
        state at login, so it takes every missed execution and, of orders and
        positions, the latest update of each that nothing newer has replaced."""
        if self.closed or self.closing:
            return
        encoder = self.encoders[self._slashed]
        for sub in self.subs:
            if sub.channel.name != channel:
                continue
            replay = self.hub.replay(sub, since)
            if replay is None:
                return  # no longer in memory: nothing to send
            late = missed_late(replay.envelopes, upto, records=sub.channel.records, item="ticket")
            for envelope in late:
                payload = encoder.encode_event(sub.channel, envelope)
                if payload is not None:
                    self.conn.send(payload)
            if late and self.acks is not None:
                self.acks.rewound(channel, since)
            return  # one subscription per channel here: no filters

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
            mark = self.acks.mark() if self.acks is not None else None
            self._resume.closed(self.principal.user_id, self._timers.time(), mark, self)


def _check_digits(spec: SymbolSpec | None, cmd: twire.PlaceOrder) -> None:
    """A price finer than the symbol quotes is refused, as REST refuses it."""
    if spec is None:
        return  # the trading service names the unknown symbol
    prices = {
        "price": cmd.price,
        "stopPrice": cmd.stop_price,
        "stopLoss": cmd.stop_loss,
        "takeProfit": cmd.take_profit,
    }
    too_fine = spec.too_fine(prices)
    if too_fine:
        raise ValidationError(
            f"More decimals than {spec.symbol}'s {spec.digits} digits",
            field=too_fine[0],
            reason="decimal_places",
        )


def _seed_field_names(exc: FxgateError) -> None:
    """The broker names the order's size ``volume``; seed 004 calls it ``quantity``."""
    details = exc.details
    if isinstance(details, dict) and details.get("field") == "volume":
        exc.details = {**details, "field": "quantity"}
