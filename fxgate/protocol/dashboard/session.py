"""One ``/ws/dashboard`` connection: its types, its client frames, its limits.

Authenticated before the upgrade (token by query or header), so a session starts with
its claims. Its tier is the token's ``tier`` claim (an unknown one is
``dashboard.default_tier``), and it gets every type the tier allows until a
``subscribe`` narrows it. Client frames get the canonical limits: the message rate and
size of ``[ws]``, an error for anything malformed, and the connection stays open.

With a ``resume`` (:class:`~fxgate.hub.resume.ResumeBook`, the node's), the session
notes the user's connection as it starts and its end as it closes, and a reconnect
within ``ws.recovery_window`` has its new feed replay the events the user missed
(:meth:`~fxgate.protocol.dashboard.registry.DashboardHub.join`'s ``since``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Protocol

from fxgate.config.settings import Settings
from fxgate.domain.errors import (
    AuthorizationError,
    Disconnect,
    Disconnects,
    FxgateError,
    RateLimitError,
    ValidationError,
)
from fxgate.hub.acks import Acks
from fxgate.hub.resume import ResumeBook
from fxgate.plugins.channel import Principal
from fxgate.protocol.dashboard import wire
from fxgate.protocol.dashboard.feed import Push, UserFeed
from fxgate.protocol.dashboard.outgoing import Framer
from fxgate.protocol.dashboard.registry import DashboardHub
from fxgate.protocol.limits import TokenBucket
from fxgate.protocol.session import Cancellable, Timers
from fxgate.services.auth.tokens import Claims

log = logging.getLogger(__name__)


class Transport(Protocol):
    """The connection's writer: frames in order, replies framed by it, and the close."""

    def control(self, frame: bytes, conflate_key: object | None = None) -> None: ...

    def send(self, payload: bytes) -> None: ...

    def kick(self, disconnect: Disconnect) -> None: ...


class DashboardSession:
    def __init__(
        self,
        *,
        dash: DashboardHub,
        claims: Claims,
        transport: Transport,
        framer: Framer,
        settings: Settings,
        timers: Timers,
        clock: Callable[[], float] = time.time,
        resume: ResumeBook | None = None,
    ) -> None:
        self.dash = dash
        self.resume = resume
        self._opened = False
        #: What the client provably read (the transport feeds it pings and pongs).
        self.acks: Acks | None = None
        self.claims: Claims | None = claims
        self.transport = transport
        self.framer = framer
        self.out: Push = transport.control
        self.limits = settings.ws
        self.tier, terms = settings.tier(claims.tier)
        self.allowed: tuple[str, ...] = tuple(terms.types)
        self.types: set[str] = set(self.allowed)
        self.session_id = "dash_" + uuid.uuid4().hex[:16]
        self.principal = Principal(claims.sub, claims.role, self.tier, self.session_id)
        self.feed: UserFeed | None = None
        self._timers = timers
        self._clock = clock
        self._bucket = TokenBucket(self.limits.max_messages_per_second, timers.time)
        self._last_rate_error = -1e18
        self._dropped = (0.0, 0)
        self._expiry: Cancellable | None = None
        self.closing = False
        self.closed = False

    # -- the feed's side (Viewer) -------------------------------------------------------

    def push(self, frame: bytes, conflate_key: object | None = None) -> None:
        if not self.closing:
            self.transport.control(frame, conflate_key)

    def kick(self, disconnect: Disconnect) -> None:
        self.disconnect(disconnect)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        claims = self.claims
        assert claims is not None
        self._expiry = self._timers.call_later(
            max(0.0, claims.exp - self._clock()), self.disconnect, Disconnects.TOKEN_EXPIRED
        )
        self.transport.send(
            wire.connection(
                self.session_id, claims.sub, self.tier, self.allowed, self._ordered(self.types)
            )
        )
        since = None
        replayed: dict[str, tuple[int, str]] = {}
        if self.resume is not None:
            user = self.principal.user_id
            await self.resume.load(user, self._timers.time())
            if self.closed or self.closing:
                return
            self.resume.opened(user, self)
            self._opened = True
            self.acks = Acks(partial(self.resume.positions, user))
            book = self.resume
            now = self._timers.time()

            def since(channel: str) -> tuple[int, str] | None:
                found = book.since(user, channel, now)
                if found is not None:
                    replayed[channel] = found
                return found

        feed = await self.dash.join(self.principal, self.tier, self, since)
        if self.closed:
            self.dash.leave(feed, self)
            return
        self.feed = feed
        if self.acks is not None:
            self.acks.settled(replayed)
            if self.resume is not None:
                self.resume.began(self)

    def shutdown_notice(self, canonical_notice: bytes) -> bytes:
        """A restart is told as a seed 000 ``notification``, not seed 001's message."""
        return wire.shutdown_notice(self.principal.user_id, self._clock())

    def disconnect(self, disconnect: Disconnect, notice: bytes | None = None) -> None:
        """Close for ``disconnect``, after ``notice`` (a payload) if any."""
        if self.closing or self.closed:
            return
        self.closing = True
        self.out = _discard
        if self.feed is not None:
            self.feed.retarget()
        if notice is not None:
            self.transport.send(notice)
        self.transport.kick(disconnect)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        if self.feed is not None:
            self.dash.leave(self.feed, self)
            self.feed = None
        if self._opened and self.resume is not None:
            mark = self.acks.mark() if self.acks is not None else None
            self.resume.closed(self.principal.user_id, self._timers.time(), mark, self)

    def replay_late(self, channel: str, since: tuple[int, str], upto: int) -> None:
        """The notifications the dead connection this one replaced never delivered,
        when it closes (``fxgate.hub.resume``, a reconnect before the close): the
        toast of a fill, a rejection or an alert pushed into the dead socket before
        this connection joined. The state needs nothing: ``trading_status`` and
        ``analytics`` went out at the join as they stood, those events included."""
        feed = self.feed
        if self.closed or self.closing or feed is None or "notification" not in self.types:
            return
        late = feed.late_notes(self, channel, since, upto)
        if not late:
            return
        for out in late:
            self.push(out.frame(self.framer))
        feed.budget.record(self._timers.time(), len(late))
        if self.acks is not None:
            self.acks.rewound(channel, since)

    def settled(self) -> bool:
        """Whether every event the user's feed took is in frames pushed to the
        transport (no notification waiting for the budget, no state still loading):
        only then does a ping's note hold."""
        return self.feed is not None and self.feed.settled

    # -- client frames ---------------------------------------------------------------------

    async def on_message(self, raw: str | bytes) -> None:
        if self.closing or self.closed:
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
            cmd = wire.parse(raw)
            if isinstance(cmd, wire.Ping):
                self.transport.send(wire.pong())
            elif isinstance(cmd, wire.Subscribe):
                self._subscribe(cmd.types)
            else:
                self._set_types(self.types - set(cmd.types))
                self.transport.send(wire.subscribed(self._ordered(self.types)))
        except FxgateError as exc:
            self.transport.send(wire.error(exc))
        except Exception:
            log.exception("dashboard session error", extra={"session": self.session_id})
            self.transport.send(wire.error(FxgateError("Internal error")))

    def _subscribe(self, types: tuple[str, ...]) -> None:
        """Narrow to ``types``: the allowed ones are kept, the others refused by name."""
        refused = [t for t in types if t not in self.allowed]
        granted = [t for t in types if t in self.allowed]
        if granted:
            self._set_types(set(granted))
            self.transport.send(wire.subscribed(self._ordered(self.types)))
        if refused:
            self.transport.send(
                wire.error(
                    AuthorizationError(
                        "Not included in your subscription tier",
                        details={
                            "types": refused,
                            "subscription_tier": self.tier,
                            "allowed_types": list(self.allowed),
                        },
                    )
                )
            )

    def _set_types(self, types: set[str]) -> None:
        self.types = types
        if self.feed is not None:
            self.feed.retarget()  # it keeps who takes each type

    def _ordered(self, types: set[str]) -> tuple[str, ...]:
        return tuple(t for t in self.allowed if t in types)

    def _rate_limited(self) -> None:
        """Over ``ws.max_messages_per_second``: told once a second; ten times the rate
        within a second closes with 4029, as on ``/api/ws``."""
        now = self._timers.time()
        start, dropped = self._dropped
        if now - start >= 1.0:
            start, dropped = now, 0
        dropped += 1
        self._dropped = (start, dropped)
        if dropped > 10 * self.limits.max_messages_per_second:
            self.disconnect(Disconnects.RATE_LIMITED)
            return
        if now - self._last_rate_error >= 1.0:
            self._last_rate_error = now
            self.transport.send(
                wire.error(
                    RateLimitError(
                        "Rate limit exceeded",
                        details={"limit": self.limits.max_messages_per_second, "per": "second"},
                    )
                )
            )


def _discard(frame: bytes, conflate_key: object | None = None) -> None:
    """A closing connection's ``out``: nothing more after its notice and close."""
