"""One client's session on the canonical protocol: auth, subscriptions, limits.

The session owns no socket. It reads text handed to it and answers through its
``Connection`` (the writer), so it runs the same under Tornado and in memory. Every
client-caused failure becomes an error message on the connection; the connection stays
open unless a limit or the token's expiry says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import (
    AuthenticationError,
    AuthorizationError,
    CloseCode,
    FxgateError,
    RateLimitError,
    ValidationError,
)
from fxgate.hub.hub import Hub, Subscription
from fxgate.hub.sink import Dialect
from fxgate.plugins.channel import Principal
from fxgate.protocol import canonical as wire
from fxgate.protocol.limits import SlidingWindowCounter, TokenBucket
from fxgate.services.auth.tokens import Claims, TokenService

log = logging.getLogger(__name__)


class Connection(Protocol):
    """The session's view of its transport: the hub's sink plus ordering controls."""

    principal: Principal
    dialect: Dialect

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None: ...

    def control(self, frame: bytes) -> None:
        """Send a reply now, ahead of anything held back by ``hold``."""

    def hold(self) -> None:
        """Keep live messages back (while a snapshot is being sent)."""

    def release(self) -> None: ...

    def kick(self, code: int, reason: str) -> None: ...


class Session:
    def __init__(
        self,
        *,
        hub: Hub,
        tokens: TokenService,
        limits: WsSettings,
        conn: Connection,
        connection_rate: SlidingWindowCounter,
        on_authenticated: Callable[[Session], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.tokens = tokens
        self.limits = limits
        self.conn = conn
        self.session_id = "session_" + uuid.uuid4().hex[:16]
        self.principal: Principal | None = None
        self.claims: Claims | None = None
        self.subs: dict[str, list[Subscription]] = {}
        self._count = 0
        self._bucket = TokenBucket(limits.max_messages_per_second)
        self._connection_rate = connection_rate
        self._on_authenticated = on_authenticated
        self._clock = clock
        self._expiry: asyncio.TimerHandle | None = None
        self._auth_deadline: asyncio.TimerHandle | None = None
        self._dropped_window = (0.0, 0)
        self._last_rate_error = 0.0
        self.closed = False

    # -- lifecycle -------------------------------------------------------------

    def start(self, claims: Claims | None) -> None:
        """Begin: with claims from the query/header, or wait for an auth message."""
        loop = asyncio.get_running_loop()
        if claims is not None:
            self._authenticated(claims)
        else:
            self._auth_deadline = loop.call_later(
                self.limits.auth_timeout,
                self.conn.kick,
                CloseCode.AUTHENTICATION,
                "Authentication timeout",
            )

    def close(self) -> None:
        """The connection is gone: drop every subscription and timer."""
        if self.closed:
            return
        self.closed = True
        for subs in self.subs.values():
            for sub in subs:
                self.hub.remove(sub)
        self.subs.clear()
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
        self.conn.control(wire.connection(self.session_id, claims.sub))
        if self._on_authenticated is not None:
            self._on_authenticated(self)

    def _schedule_expiry(self, exp: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        delay = max(0.0, exp - self._clock())
        self._expiry = asyncio.get_running_loop().call_later(
            delay, self.conn.kick, CloseCode.AUTHENTICATION, "Token expired"
        )

    # -- input -----------------------------------------------------------------

    async def on_message(self, raw: str | bytes) -> None:
        if self.closed:
            return
        if not self._bucket.take():
            self._rate_limited()
            return
        try:
            if len(raw) > self.limits.max_message_size:
                raise ValidationError(
                    "Message too large",
                    details={"limit": self.limits.max_message_size, "size": len(raw)},
                )
            cmd = wire.parse(raw)
            if self.principal is None and not isinstance(cmd, wire.Auth):
                raise AuthenticationError("Authenticate first: send {type: auth, token}")
            await self._dispatch(cmd)
        except FxgateError as exc:
            self.conn.control(wire.error(exc))
        except Exception:
            log.exception("session error", extra={"session": self.session_id})
            self.conn.control(wire.error(FxgateError("Internal error")))

    def _rate_limited(self) -> None:
        now = self._clock()
        start, dropped = self._dropped_window
        if now - start >= 1.0:
            start, dropped = now, 0
        dropped += 1
        self._dropped_window = (start, dropped)
        # A client that keeps flooding at many times the limit is cut off; one that
        # bursts is told once a second and keeps its connection.
        if dropped > 10 * self.limits.max_messages_per_second:
            self.conn.kick(CloseCode.RATE_LIMITED, "Rate limit exceeded")
            return
        if now - self._last_rate_error >= 1.0:
            self._last_rate_error = now
            self.conn.control(
                wire.error(
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
            self.conn.control(wire.pong())
        else:
            await self.auth(cmd.token)

    async def auth(self, token: str) -> None:
        claims = await self.tokens.verify(token)
        if self.principal is None:
            if not self._connection_rate.hit(claims.sub):
                self.conn.kick(CloseCode.RATE_LIMITED, "Too many connections")
                return
            self._authenticated(claims)
            return
        if claims.sub != self.principal.user_id:
            raise AuthorizationError("A refreshed token must be for the same user")
        self.claims = claims
        self.principal = Principal(claims.sub, claims.role, claims.tier, self.session_id)
        self.conn.principal = self.principal
        self._schedule_expiry(claims.exp)
        self.conn.control(wire.auth_ok(claims.exp))

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
                    self.conn.control(wire.error(exc))
                    continue
                existing = self.subs.get(sub.channel.name, [])
                if any(s.filters == sub.filters for s in existing):
                    acks.append(self._ack(sub))
                    continue
                if self._count >= self.limits.max_subscriptions:
                    self.conn.control(
                        wire.error(
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
                self.hub.add(sub)
                self.subs.setdefault(sub.channel.name, []).append(sub)
                self._count += 1
                fresh.append((sub, item))
            replays = {}
            for sub, item in fresh:
                replay = self.hub.replay(sub, item.since)
                replays[id(sub)] = replay
                ack = self._ack(sub)
                if item.since is not None:
                    ack["recovered"] = replay is not None
                acks.append(ack)
            if acks:
                self.conn.control(wire.subscription(acks))
            for sub, _item in fresh:
                replay = replays[id(sub)]
                if replay is not None:
                    for frame in replay.frames:
                        self.conn.control(frame)
                else:
                    await self._send_snapshot(sub)
        finally:
            self.conn.release()

    @staticmethod
    def _ack(sub: Subscription) -> dict[str, Any]:
        return {"name": sub.channel.name, "subscribed": True, "filters": sub.describe_filters()}

    async def _send_snapshot(self, sub: Subscription) -> None:
        assert self.principal is not None
        try:
            items = await sub.channel.snapshot(self.principal, sub.filters)
        except FxgateError as exc:
            self.conn.control(wire.error(exc))
            return
        except Exception:
            log.exception("snapshot failed", extra={"channel": sub.channel.name})
            self.conn.control(wire.error(FxgateError("Snapshot unavailable")))
            return
        dialect = self.conn.dialect
        for payload in items:
            if sub.residual and not sub.channel.matches(sub.residual, payload):
                continue
            frame = dialect.encode_event(sub.channel, self.hub.snapshot_envelope(sub, payload))
            if frame is not None:
                self.conn.control(frame)

    def unsubscribe(self, names: tuple[str, ...]) -> None:
        done: list[str] = []
        for name in names:
            if name not in self.hub.channels:
                self.conn.control(
                    wire.error(ValidationError("Invalid channel", details={"channel": name}))
                )
                continue
            for sub in self.subs.pop(name, []):
                self.hub.remove(sub)
                self._count -= 1
            done.append(name)
        if done:
            self.conn.control(wire.unsubscription(done))
