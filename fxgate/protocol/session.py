"""One client's session on the canonical protocol: auth, subscriptions, limits.

The session does no I/O, like Hypercorn's ``WSStream``: the transport hands it client
frames (``on_message``) and it answers through the ``Connection`` it was given (``send``
a reply, ``hold``/``release`` live messages around a snapshot, ``kick`` to close), and
it keeps time only through the injected ``Timers`` and wall clock. So it runs the same
under Tornado and in memory (``tests/protocol/fakes.py``). Every client-caused failure
becomes an error message; the connection stays open unless a limit, a refused first
token or the token's expiry says otherwise (the close-code table in
``fxgate.domain.errors``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
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
from fxgate.hub.acks import Acks
from fxgate.hub.hub import Hub, Replay, Subscription
from fxgate.hub.sink import Dialect, Sink
from fxgate.plugins.channel import Principal
from fxgate.protocol import canonical as wire
from fxgate.protocol.limits import SlidingWindowCounter, TokenBucket
from fxgate.services.auth.tokens import Claims

log = logging.getLogger(__name__)


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    """The session's clock and timers; an asyncio loop is one, a test's fake another."""

    def time(self) -> float:
        """Monotonic seconds (rate limits, flood grace)."""

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Cancellable:
        """Run ``callback(*args)`` after ``delay`` seconds unless cancelled."""


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Claims: ...


class Connection(Sink, Protocol):
    """The session's view of its transport: the hub's sink plus replies and ordering."""

    def send(self, payload: bytes) -> None:
        """Send a reply (payload bytes; the transport frames it) now, ahead of anything
        held back by ``hold``."""

    def hold(self) -> None:
        """Keep live messages back (while a snapshot is being sent); held market data
        is conflated (latest per key) and counts against the connection's bound."""

    def release(self) -> None: ...


class Replies(Protocol):
    """A dialect's control replies (payload bytes). ``fxgate.protocol.canonical`` is
    seed 001's; a dialect whose session is a :class:`Session` subclass sets its own
    (``Session.replies``), so limits, subscriptions and recovery stay written once."""

    def connection(self, session_id: str, user_id: str) -> bytes: ...

    def subscription(self, channels: list[dict[str, Any]]) -> bytes: ...

    def unsubscription(self, names: list[str]) -> bytes: ...

    def pong(self) -> bytes: ...

    def auth_ok(self, expires_at: float) -> bytes: ...

    def error(self, exc: FxgateError) -> bytes: ...


class Session:
    #: The control replies' wire format; client frames are parsed by ``on_message``.
    replies: Replies = wire
    #: What the client provably read, for a dialect that resumes without offsets
    #: (the transport feeds it pings and pongs); None elsewhere.
    acks: Acks | None = None

    def __init__(
        self,
        *,
        hub: Hub,
        tokens: TokenVerifier,
        limits: WsSettings,
        conn: Connection,
        dialect: Dialect,
        connection_rate: SlidingWindowCounter,
        timers: Timers,
        on_authenticated: Callable[[Session], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.tokens = tokens
        self.limits = limits
        self.conn = conn
        #: Encodes snapshots and replays (payloads; the transport frames them).
        self.dialect = dialect
        self.session_id = "session_" + uuid.uuid4().hex[:16]
        self.principal: Principal | None = None
        self.claims: Claims | None = None
        self.subs: dict[str, list[Subscription]] = {}
        self._count = 0
        self._timers = timers
        self._bucket = TokenBucket(limits.max_messages_per_second, timers.time)
        self._connection_rate = connection_rate
        #: Called once the session knows its user; a transport may set it after
        #: construction (the socket base lists the connection in the node's registry).
        self.on_authenticated = on_authenticated
        self._clock = clock
        self._expiry: Cancellable | None = None
        self._auth_deadline: Cancellable | None = None
        self._dropped_window = (0.0, 0)
        self._last_rate_error = -1e18
        #: Flood tracking: when the current run of dropped messages began, and the
        #: last drop (a second without one ends the run).
        self._flood_start = 0.0
        self._last_drop = -1e18
        #: Kicked: the transport is closing, so nothing more is read or answered.
        self.closing = False
        self.closed = False

    # -- lifecycle -------------------------------------------------------------

    def start(self, claims: Claims | None) -> None:
        """Begin: with claims from the query/header, or wait for an auth message."""
        if claims is not None:
            self._authenticated(claims)
        else:
            self._auth_deadline = self._timers.call_later(
                self.limits.auth_timeout, self.disconnect, Disconnects.AUTH_TIMEOUT
            )

    def disconnect(self, disconnect: Disconnect, notice: bytes | None = None) -> None:
        """Close the connection for ``disconnect``, after ``notice`` (a payload) if any."""
        if self.closed or self.closing:
            return
        self.closing = True
        if notice is not None:
            self.conn.send(notice)
        self.conn.kick(disconnect)

    def shutdown_notice(self, canonical_notice: bytes) -> bytes:
        """What this session's client is told before the server closes it with 1001
        (``fxgate.ops.serve``): seed 001's ``system`` RESTARTING message, or the
        dialect's own."""
        return canonical_notice

    def close(self) -> None:
        """The connection is gone: drop every subscription and timer."""
        if self.closed:
            return
        self.closed = True
        for subs in self.subs.values():
            for sub in subs:
                self.hub.remove(sub)
        self.subs.clear()
        self._count = 0
        for handle in (self._expiry, self._auth_deadline):
            if handle is not None:
                handle.cancel()

    def _authenticated(self, claims: Claims) -> None:
        self.claims = claims
        self.principal = Principal(claims.sub, claims.role, claims.tier, self.session_id)
        self.conn.principal = self.principal
        if self._auth_deadline is not None:
            self._auth_deadline.cancel()
            self._auth_deadline = None
        self._schedule_expiry(claims.exp)
        self.conn.send(self.welcome_message(claims))
        if self.on_authenticated is not None:
            self.on_authenticated(self)

    def welcome_message(self, claims: Claims) -> bytes:
        """The first message once authenticated (seed 001's ``connection``)."""
        return self.replies.connection(self.session_id, claims.sub)

    def _schedule_expiry(self, exp: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        delay = max(0.0, exp - self._clock())
        self._expiry = self._timers.call_later(delay, self.disconnect, Disconnects.TOKEN_EXPIRED)

    # -- input -----------------------------------------------------------------

    def parse(self, raw: str | bytes) -> Any:
        """One client frame to a command (seed 001's); a dialect's session reads its own
        frames into its own commands, and handles them in its ``_dispatch``."""
        return wire.parse(raw)

    async def on_message(self, raw: str | bytes) -> None:
        if self.closed or self.closing:
            return
        if not self._bucket.take():
            self._rate_limited()
            return
        try:
            if len(raw) > self.limits.max_message_size:
                raise ValidationError(
                    "Message too large",
                    field="frame",
                    reason="too_large",
                    details={"limit": self.limits.max_message_size, "size": len(raw)},
                )
            cmd = self.parse(raw)
            if self.principal is None and not isinstance(cmd, wire.Auth):
                raise AuthenticationError("Authenticate first: send {type: auth, token}")
            await self._dispatch(cmd)
        except FxgateError as exc:
            self.conn.send(self.replies.error(exc))
        except Exception:
            log.exception("session error", extra={"session": self.session_id})
            self.conn.send(self.replies.error(FxgateError("Internal error")))

    def _rate_limited(self) -> None:
        """A message over the rate was dropped. A burst is told once a second and keeps
        its connection; a client still over the limit ``ws.flood_grace`` seconds into a
        run of drops (no second without one), or dropping more than ten times the
        limit within a second, is closed with 4029."""
        now = self._timers.time()
        if now - self._last_drop >= 1.0:
            self._flood_start = now
        self._last_drop = now
        start, dropped = self._dropped_window
        if now - start >= 1.0:
            start, dropped = now, 0
        dropped += 1
        self._dropped_window = (start, dropped)
        if (
            now - self._flood_start >= self.limits.flood_grace
            or dropped > 10 * self.limits.max_messages_per_second
        ):
            self.disconnect(Disconnects.RATE_LIMITED)
            return
        if now - self._last_rate_error >= 1.0:
            self._last_rate_error = now
            self.conn.send(
                self.replies.error(
                    RateLimitError(
                        "Rate limit exceeded",
                        details={"limit": self.limits.max_messages_per_second, "per": "second"},
                    )
                )
            )

    async def _dispatch(self, cmd: wire.Command) -> None:
        if isinstance(cmd, wire.Subscribe):
            await self.subscribe(cmd.items)
        elif isinstance(cmd, wire.Unsubscribe):
            self.unsubscribe(cmd.names)
        elif isinstance(cmd, wire.Ping):
            self.conn.send(self.replies.pong())
        else:
            await self.auth(cmd.token)

    async def auth(self, token: str) -> None:
        if self.principal is None:
            await self._first_auth(token)
            return
        # A refresh: a bad token is refused with an error and the current one stays.
        claims = await self.tokens.verify(token)
        if self.closed or self.principal is None:
            return
        if claims.sub != self.principal.user_id:
            raise AuthorizationError("A refreshed token must be for the same user")
        self.claims = claims
        self.principal = Principal(claims.sub, claims.role, claims.tier, self.session_id)
        self.conn.principal = self.principal
        dropped = self._drop_forbidden(self.principal)
        self._schedule_expiry(claims.exp)
        self.conn.send(self.replies.auth_ok(claims.exp))
        if dropped:
            self.conn.send(
                self.replies.error(
                    AuthorizationError(
                        "Permission denied: subscriptions dropped",
                        details={"channels": dropped, "role": str(claims.role)},
                    )
                )
            )

    async def _first_auth(self, token: str) -> None:
        try:
            claims = await self.tokens.verify(token)
        except AuthenticationError as exc:
            # DESIGN.md: a bad token is refused, close code 4001 after the error.
            self.disconnect(Disconnects.AUTH_FAILED, notice=self.replies.error(exc))
            return
        if self.closed or self.principal is not None:
            return
        if not self._connection_rate.hit(claims.sub):
            self.disconnect(Disconnects.TOO_MANY_CONNECTIONS)
            return
        self._authenticated(claims)

    def _drop_forbidden(self, principal: Principal) -> list[str]:
        """Unsubscribe what ``principal`` may no longer hold; the channel names."""
        dropped: list[str] = []
        for name, subs in list(self.subs.items()):
            try:
                for sub in subs:
                    self.hub.check_access(principal, sub.channel, sub.keys)
            except AuthorizationError:
                for sub in subs:
                    self.hub.remove(sub)
                    self._count -= 1
                del self.subs[name]
                dropped.append(name)
        return dropped

    # -- subscriptions ---------------------------------------------------------

    async def subscribe(self, items: tuple[wire.SubItem, ...]) -> None:
        acks: list[dict[str, Any]] = []
        fresh: list[tuple[Subscription, wire.SubItem]] = []
        self.conn.hold()
        try:
            for item in items:
                try:
                    sub = self.hub.make_subscription(self.conn, item.name, item.filters)
                except FxgateError as exc:
                    self.conn.send(self.replies.error(exc))
                    continue
                existing = self.subs.get(sub.channel.name, [])
                if any(s.filters == sub.filters for s in existing):
                    acks.append(self._ack(sub))
                    continue
                if self._count >= self.limits.max_subscriptions:
                    self.conn.send(
                        self.replies.error(
                            RateLimitError(
                                "Too many subscriptions",
                                details={
                                    "channel": sub.channel.name,
                                    "limit": self.limits.max_subscriptions,
                                },
                            )
                        )
                    )
                    continue
                if item.since is None:
                    self.hub.add(sub)
                self.subs.setdefault(sub.channel.name, []).append(sub)
                self._count += 1
                fresh.append((sub, item))
            ready: list[tuple[Subscription, Replay | None]] = []
            for sub, item in fresh:
                replay = None
                if item.since is not None:
                    # Memory, else the durable history (a restart, another node); the
                    # subscription joins the hub right after, with no await between.
                    replay = await self.hub.recover(
                        sub, item.since, self.limits.recovery_max_messages
                    )
                    if self.closed:
                        return
                    if sub not in self.subs.get(sub.channel.name, ()):
                        continue  # unsubscribed meanwhile
                    self.hub.add(sub)
                ready.append((sub, replay))
                ack = self._ack(sub)
                if item.since is not None:
                    ack["recovered"] = replay is not None
                acks.append(ack)
            if acks:
                self._acknowledge(acks)
            for sub, replay in ready:
                if replay is not None:
                    for envelope in replay.envelopes:
                        payload = self.dialect.encode_event(sub.channel, envelope)
                        if payload is not None:
                            self.conn.send(payload)
                else:
                    await self._send_snapshot(sub)
        finally:
            self.conn.release()

    def _acknowledge(self, acks: list[dict[str, Any]]) -> None:
        """Confirm a subscribe request (before its snapshots); a dialect whose
        acknowledgement says more, or nothing, overrides it."""
        self.conn.send(self.replies.subscription(acks))

    @staticmethod
    def _ack(sub: Subscription) -> dict[str, Any]:
        return {"name": sub.channel.name, "subscribed": True, "filters": sub.describe_filters()}

    async def _send_snapshot(self, sub: Subscription) -> None:
        assert self.principal is not None
        offsets = self.hub.snapshot_offsets(sub)
        try:
            items = await sub.channel.snapshot(self.principal, sub.filters)
        except FxgateError as exc:
            self.conn.send(self.replies.error(exc))
            return
        except Exception:
            log.exception("snapshot failed", extra={"channel": sub.channel.name})
            self.conn.send(self.replies.error(FxgateError("Snapshot unavailable")))
            return
        dialect = self.dialect
        for payload in items:
            if sub.residual and not sub.channel.matches(sub.residual, payload):
                continue
            envelope = self.hub.snapshot_envelope(sub, payload, offsets)
            message = dialect.encode_event(sub.channel, envelope)
            if message is not None:
                self.conn.send(message)

    def unsubscribe(self, names: tuple[str, ...]) -> None:
        done: list[str] = []
        for name in names:
            if name not in self.hub.channels:
                self.conn.send(
                    self.replies.error(
                        ValidationError(
                            "Invalid channel", field="channels", details={"channel": name}
                        )
                    )
                )
                continue
            for sub in self.subs.pop(name, []):
                self.hub.remove(sub)
                self._count -= 1
            done.append(name)
        if done:
            self.conn.send(self.replies.unsubscription(done))
