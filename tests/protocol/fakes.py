"""An in-memory harness for the protocol layer: a fake connection, clock and tokens.

The hub and a dialect's session do no I/O, so they are tested here without Tornado or
sockets: the test drives the session with client frames (``Harness.send``), publishes
events into the real :class:`~fxgate.hub.hub.Hub` (``Harness.publish``), moves time
on (``FakeClock.advance``, which fires due timers), and reads what the client would
have received, in order (``Harness.received``), and how it was closed
(``FakeConnection.disconnect``).

``FakeConnection`` keeps the transport's contract that the session relies on: replies
(``send``) go out at once; live messages (``deliver``) are held between ``hold`` and
``release`` (a snapshot) and then follow it, conflated by their key like the real
writer's held frames; after ``kick`` nothing more arrives and the session is closed, as
the transport's ``on_close`` does.

A new dialect uses it the same way: give ``make_harness`` the dialect's encoder
(``dialect=``), a ``decode`` that turns one of its payloads back into a dict (for the
assertions), and a ``session_factory`` building the dialect's session from the
harness's pieces (keyword arguments ``hub``, ``tokens``, ``settings``, ``conn``,
``clock``, ``dialect``); then run the shared stories (tests/protocol/test_session.py
tells them for the canonical dialect: auth window, expiry, limits, subscribe and
unsubscribe, snapshot-then-live, conflation) with the dialect's own frames::

    h = make_harness(dialect=DASHBOARD, decode=json.loads,
                     session_factory=dashboard_session, role="viewer")
    await h.send({"type": "subscribe", "types": ["market_data"]})
    h.publish(quote("EURUSD", 1.1))
    assert [m["type"] for m in h.new()] == ["market_data"]

Only the payloads are checked: framing is the transport's and is tested with it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import AuthenticationError, Disconnect
from fxgate.domain.events import Event
from fxgate.domain.roles import Role
from fxgate.hub.hub import Hub
from fxgate.hub.sink import Dialect
from fxgate.plugins.channel import Channel, Filter, Filters, Principal
from fxgate.protocol.canonical import CANONICAL
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.protocol.session import Session
from fxgate.services.auth.tokens import Claims

ANONYMOUS = Principal("", Role.VIEWER)


class FakeTimer:
    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """The session's timers, monotonic clock and wall clock in one, moved by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, FakeTimer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def __call__(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> FakeTimer:
        timer = FakeTimer(self.now + delay, callback, args)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Move on by ``seconds``, firing every timer that comes due, in order."""
        end = self.now + seconds
        while self._heap and self._heap[0][0] <= end:
            when, _, timer = heapq.heappop(self._heap)
            self.now = max(self.now, when)
            if not timer.cancelled:
                timer.callback(*timer.args)
        self.now = end

    def pending(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)


class FakeTokens:
    """A token verifier: tokens are names for claims it issued, checked against the
    fake clock; anything else is refused like a forged token."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._claims: dict[str, Claims] = {}
        self._ids = itertools.count(1)

    def issue(self, user: str, role: str = "trader", ttl: float = 900, tier: str = "free") -> str:
        n = next(self._ids)
        token = f"token-{n}"
        now = int(self.clock())
        self._claims[token] = Claims(
            sub=user,
            role=Role(role),
            tier=tier,
            iat=now,
            exp=int(now + ttl),
            jti=f"jti-{n}",
            kid="k1",
        )
        return token

    def claims(self, token: str) -> Claims:
        """The claims behind ``token`` (what the transport verified before the upgrade)."""
        return self._claims[token]

    async def verify(self, token: str) -> Claims:
        claims = self._claims.get(token)
        if claims is None:
            raise AuthenticationError("Authentication failed: invalid signature")
        if claims.exp <= self.clock():
            raise AuthenticationError("Authentication failed: token expired")
        return claims


class FakeConnection:
    """The transport as the session and the hub see it, recording what the client gets."""

    def __init__(self, dialect: Dialect) -> None:
        self.principal = ANONYMOUS
        self.dialect = dialect
        #: Every payload the client received, in order.
        self.received: list[bytes] = []
        #: Every kick the session asked for (a transport closes on the first).
        self.kicks: list[Disconnect] = []
        self.on_kick: Callable[[], None] | None = None
        self._held: dict[object, bytes] | None = None
        self._seq = itertools.count()

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        if self.disconnect is not None:
            return
        if self._held is not None:
            if conflate_key is None:
                conflate_key = ("seq", next(self._seq))
            self._held.pop(conflate_key, None)
            self._held[conflate_key] = frame
            return
        self.received.append(frame)

    def send(self, payload: bytes) -> None:
        if self.disconnect is None:
            self.received.append(payload)

    def hold(self) -> None:
        if self._held is None:
            self._held = {}

    def release(self) -> None:
        held, self._held = self._held, None
        for frame in (held or {}).values():
            self.deliver(frame)

    @property
    def holding(self) -> bool:
        return self._held is not None

    @property
    def disconnect(self) -> Disconnect | None:
        """How the connection was closed, if it was."""
        return self.kicks[0] if self.kicks else None

    def kick(self, disconnect: Disconnect) -> None:
        self.kicks.append(disconnect)
        if len(self.kicks) == 1 and self.on_kick is not None:
            self.on_kick()


# -- channels for the stories --------------------------------------------------------


class Quotes(Channel):
    """Public, keyed by symbol, conflated: market data's shape."""

    name = "quotes"
    message_type = "quote"
    scope = "public"
    filters = {"symbol": Filter("symbol")}
    key_filter = "symbol"
    conflate = True

    def __init__(self) -> None:
        super().__init__()
        self.snapshot_items: list[Mapping[str, Any]] = []
        #: When set, the snapshot waits for it (a slow store read).
        self.gate: asyncio.Event | None = None
        self.snapshot_started = asyncio.Event()

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        self.snapshot_started.set()
        if self.gate is not None:
            await self.gate.wait()
        return list(self.snapshot_items)


class Orders(Channel):
    """Per user, never conflated, traders only: trading events' shape."""

    name = "orders"
    message_type = "order"
    scope = "user"
    min_role = Role.TRADER
    filters = {"symbol": Filter("symbol")}


def quote(symbol: str, bid: float) -> Event:
    return Event("quotes", {"symbol": symbol, "bid": bid}, key=symbol)


def order(user: str, n: int, symbol: str = "EURUSD") -> Event:
    return Event("orders", {"n": n, "symbol": symbol}, user_id=user)


# -- the harness -------------------------------------------------------------------


def decode_canonical(payload: bytes) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(payload)
    return msg


@dataclass
class Harness:
    hub: Hub
    clock: FakeClock
    tokens: FakeTokens
    settings: WsSettings
    conn: FakeConnection
    session: Session
    decode: Callable[[bytes], dict[str, Any]]
    channels: dict[str, Channel] = field(default_factory=dict)
    _read: int = 0

    async def send(self, msg: Any) -> None:
        """A client frame (a dict is sent as JSON text)."""
        raw = msg if isinstance(msg, str | bytes) else json.dumps(msg)
        await self.session.on_message(raw)

    def publish(self, event: Event) -> None:
        self.hub.publish(event)

    def received(self) -> list[dict[str, Any]]:
        """Everything the client got so far, decoded."""
        return [self.decode(p) for p in self.conn.received]

    def new(self) -> list[dict[str, Any]]:
        """What the client got since the last call."""
        out = [self.decode(p) for p in self.conn.received[self._read :]]
        self._read = len(self.conn.received)
        return out

    def types(self) -> list[str]:
        return [m["type"] for m in self.new()]


SessionFactory = Callable[..., Session]


def canonical_session(
    *,
    hub: Hub,
    tokens: FakeTokens,
    settings: WsSettings,
    conn: FakeConnection,
    clock: FakeClock,
    dialect: Dialect,
) -> Session:
    return Session(
        hub=hub,
        tokens=tokens,
        limits=settings,
        conn=conn,
        dialect=dialect,
        connection_rate=SlidingWindowCounter(settings.connections_per_minute, clock=clock.time),
        timers=clock,
        clock=clock,
    )


def make_harness(
    *,
    user: str | None = "alice",
    role: str = "trader",
    ttl: float = 900,
    channels: Iterable[Channel] | None = None,
    dialect: Dialect = CANONICAL,
    decode: Callable[[bytes], dict[str, Any]] = decode_canonical,
    session_factory: SessionFactory = canonical_session,
    **limits: Any,
) -> Harness:
    """A started session: authenticated as ``user`` (by query/header token) unless
    ``user`` is None (then it waits for first-message auth). ``limits`` override
    ``[ws]`` settings."""
    clock = FakeClock()
    tokens = FakeTokens(clock)
    chans = list(channels) if channels is not None else [Quotes(), Orders()]
    hub = Hub(chans, epoch="e1")
    settings = WsSettings(**limits)
    conn = FakeConnection(dialect)
    session = session_factory(
        hub=hub, tokens=tokens, settings=settings, conn=conn, clock=clock, dialect=dialect
    )
    conn.on_kick = session.close
    claims = tokens.claims(tokens.issue(user, role, ttl)) if user is not None else None
    session.start(claims)
    h = Harness(hub, clock, tokens, settings, conn, session, decode, {c.name: c for c in chans})
    h.new()  # the connection message: what the stories read starts after it
    return h
