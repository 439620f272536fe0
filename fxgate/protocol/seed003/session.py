"""One client's session on seed 003's ``/ws``: the canonical session, in seed 003's words.

What differs from ``/api/ws`` is small and lives here: the user's own trading streams
(``orders``, ``positions``, ``account``) are subscribed at authentication, without a
request, and their current state is sent first (or, given a :class:`ResumeMarks`, the
events the user missed since their last connection closed); a ``subscribe`` names one
channel and symbols, and each symbol is its own (channel, filter) subscription, so
``unsubscribe`` with symbols drops just those; acknowledgements tell the channel's
whole state. The auth window, token
expiry and refresh, rate and size limits, snapshots and conflation are the canonical
session's, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Protocol

from fxgate.domain.errors import AuthenticationError, Disconnects, ValidationError
from fxgate.hub.acks import Acks
from fxgate.hub.hub import Subscription
from fxgate.protocol.canonical import Auth, Ping, SubItem
from fxgate.protocol.seed003 import wire as seed_wire
from fxgate.protocol.seed003.wire import ChannelRequest
from fxgate.protocol.session import Session
from fxgate.services.auth.tokens import Claims

#: The user's streams every authenticated ``/ws`` connection receives unasked.
USER_STREAMS = ("orders", "positions", "account")


class ResumeMarks(Protocol):
    """Where each of a user's streams stood when their last connection closed: the
    hook for the server-side replay of missed trading events (DESIGN.md, "Clients that
    cannot send an offset"), the shape of the Socket.IO issue's ``ResumeBook``
    (``fxgate.hub.resume``, branch ``socketio``). Without one, every connection starts
    with fresh snapshots of the user's state."""

    def opened(self, user_id: str) -> None: ...

    def closed(
        self, user_id: str, now: float, acked: Mapping[str, tuple[int, str]] | None = None
    ) -> None: ...

    def positions(self, user_id: str) -> dict[str, tuple[int, str]]: ...

    def since(self, user_id: str, channel: str, now: float) -> tuple[int, str] | None: ...

    async def load(self, user_id: str, now: float) -> None:
        """Bring the user's mark from where it is shared (another node, before a
        restart) before ``since`` is asked."""


class Seed003Session(Session):
    replies = seed_wire.REPLIES

    def __init__(self, *, resume: ResumeMarks | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resume = resume
        self._opened = False
        #: Subscribing the user's streams at auth: no acknowledgement for those.
        self._welcoming = False

    # -- authentication ----------------------------------------------------------------

    def welcome_message(self, claims: Claims) -> bytes:
        return seed_wire.auth_success(self.session_id, claims.sub, claims.exp)

    async def welcome(self) -> None:
        """Subscribe the user's own streams and send where they stand now (or replay
        what the user missed, where a resume point is known)."""
        if self.principal is None or self.closing or self.closed:
            return
        user = self.principal.user_id
        if self.resume is not None:
            await self.resume.load(user, self._timers.time())
            if self.closed or self.closing:
                return
            self.resume.opened(user)
            self._opened = True
            self.acks = Acks(partial(self.resume.positions, user))
        items = tuple(
            SubItem(name, None, self._since(user, name))
            for name in USER_STREAMS
            if name in self.hub.channels
        )
        self._welcoming = True
        try:
            await self.subscribe(items)
        finally:
            self._welcoming = False
        if self.acks is not None:
            self.acks.settled({i.name: i.since for i in items if i.since is not None})

    def _since(self, user: str, channel: str) -> tuple[int, str] | None:
        """Where to replay ``channel`` from, when events were missed; else None (a
        snapshot: a reconnect with nothing missed and a new page look alike)."""
        if self.resume is None:
            return None
        since = self.resume.since(user, channel, self._timers.time())
        if since is None:
            return None
        stream = self.hub.streams.find(channel, user)
        return since if stream is not None and stream.offset > since[0] else None

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self._opened and self.resume is not None and self.principal is not None:
            mark = self.acks.mark() if self.acks is not None else None
            self.resume.closed(self.principal.user_id, self._timers.time(), mark)

    async def auth(self, token: str) -> None:
        if not token:
            exc = AuthenticationError("auth needs a token")
            if self.principal is None:
                # Missing credentials are refused like bad ones: the error, then 4001.
                self.disconnect(Disconnects.AUTH_FAILED, notice=seed_wire.error(exc))
                return
            raise exc
        first = self.principal is None
        await super().auth(token)
        if first:
            await self.welcome()

    def shutdown_notice(self, canonical_notice: bytes) -> bytes:
        return seed_wire.restarting()

    # -- requests ----------------------------------------------------------------------

    def parse(self, raw: str | bytes) -> seed_wire.Command:
        return seed_wire.parse(raw)

    async def _dispatch(self, cmd: object) -> None:
        if isinstance(cmd, ChannelRequest):
            if cmd.subscribe:
                await self.subscribe_channel(cmd)
            else:
                self.unsubscribe_channel(cmd)
        elif isinstance(cmd, Ping):
            self.conn.send(seed_wire.pong())
        elif isinstance(cmd, Auth):
            await self.auth(cmd.token)

    async def subscribe_channel(self, cmd: ChannelRequest) -> None:
        """One subscription per symbol (or one for every symbol), each checked by the
        hub like a canonical one: a symbol refused gets its error, the others hold."""
        name = cmd.hub_channel
        if name not in self.hub.channels:
            # Seed 003 names it, but this server runs without its plugin.
            raise ValidationError(
                "Channel not available on this server",
                field="channel",
                reason="disabled",
                details={"channel": cmd.channel},
            )
        items = tuple(SubItem(name, {"symbol": s}) for s in cmd.symbols) or (SubItem(name),)
        await self.subscribe(items)

    def _acknowledge(self, acks: list[dict[str, Any]]) -> None:
        if self._welcoming:
            return
        self.conn.send(self._channel_state("subscribed", acks[0]["name"]))

    def unsubscribe_channel(self, cmd: ChannelRequest) -> None:
        name = cmd.hub_channel
        held = self.subs.get(name, [])
        if cmd.symbols:
            # Each symbol's own subscription; "every symbol" goes only without symbols.
            asked = set(cmd.symbols)
            drop = [s for s in held if s.filters and s.filters.get("symbol", asked) <= asked]
        else:
            drop = list(held)
        for sub in drop:
            held.remove(sub)
            self.hub.remove(sub)
            self._count -= 1
        if not held:
            self.subs.pop(name, None)
        self.conn.send(self._channel_state("unsubscribed", name))

    def _channel_state(self, kind: str, hub_channel: str) -> bytes:
        subs: list[Subscription] = self.subs.get(hub_channel, [])
        symbols = sorted({sym for s in subs for sym in s.filters.get("symbol", ())})
        every = any(not s.filters for s in subs)
        return seed_wire.channel_state(kind, seed_wire.SEED_NAME[hub_channel], symbols, every)
