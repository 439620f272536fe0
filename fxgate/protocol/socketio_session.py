"""One Socket.IO client's session (seed 002): the canonical :class:`Session`, seed 002's words.

Limits (messages per second and the flood rule, payload size, subscriptions), token
expiry, the hub's subscriptions, snapshots and ``since`` recovery are the canonical
session's, unchanged; this subclass only reads Socket.IO events instead of seed 001's
frames, answers with seed 002's events (``wire``), maps the seed's channel names, sends
``positions``/``orders`` as full lists (``socketio_lists``), and, because a Socket.IO
client cannot send an offset, asks the :class:`~fxgate.hub.resume.ResumeBook` where
the user's streams stood when their last connection closed.

The transport authenticates the Socket.IO CONNECT packet before the session exists, so
a session always starts with claims; the transport's ``kick`` tells the client
(``disconnected``, then the Socket.IO DISCONNECT) before closing, so the canonical
notice a caller may pass to :meth:`disconnect` is not sent.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fxgate.domain.errors import Disconnect, ValidationError
from fxgate.hub.acks import Acks
from fxgate.hub.hub import Subscription
from fxgate.hub.resume import ResumeBook
from fxgate.protocol import canonical
from fxgate.protocol import socketio as sio
from fxgate.protocol.session import Session
from fxgate.protocol.socketio_lists import ListFeeds
from fxgate.services.auth.tokens import Claims


class SocketIOSession(Session):
    replies = sio.REPLIES

    def __init__(self, *, lists: ListFeeds, resume: ResumeBook | None, **kwargs: Any) -> None:
        kwargs.setdefault("dialect", sio.SOCKETIO)
        super().__init__(**kwargs)
        self.lists = lists
        self.resume = resume
        self._opened = False

    def start(self, claims: Claims | None) -> None:
        if claims is None:
            raise ValueError("a Socket.IO session starts authenticated (CONNECT's auth)")
        super().start(claims)

    def disconnect(self, disconnect: Disconnect, notice: bytes | None = None) -> None:
        # The transport's kick says it in seed 002's words (``disconnected``).
        super().disconnect(disconnect, None)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self.principal is not None:
            self.lists.leave_all(self.principal.user_id, self.conn)
            if self._opened and self.resume is not None:
                mark = self.acks.mark() if self.acks is not None else None
                self.resume.closed(self.principal.user_id, self._timers.time(), mark)

    # -- input -----------------------------------------------------------------

    def parse(self, raw: str | bytes) -> Any:
        """One Socket.IO packet (an EVENT; CONNECT is the transport's) to a command."""
        return sio.parse(raw)

    async def _dispatch(self, cmd: Any) -> None:
        # Answers are events, as the seed's backend sends them; a client that passed an
        # acknowledgement callback also gets it called with the same data.
        if isinstance(cmd, sio.Subscribe):
            names = await self.subscribe_seed(cmd.channels)
            body: Any = {"channels": names}
        elif isinstance(cmd, sio.Unsubscribe):
            body = {"channels": self.unsubscribe_seed(cmd.channels)}
        elif isinstance(cmd, sio.Heartbeat):
            body = sio.heartbeat_body(cmd.timestamp)
            self.conn.send(sio.event("heartbeat_ack", body))
        else:
            raise ValidationError("Already connected", field="frame", reason="connected")
        if cmd.ack is not None and not self.closed:
            self.conn.send(sio.ack(cmd.ack, body))

    async def on_packet(self, raw: str | bytes) -> None:
        """One Socket.IO packet from the client: the canonical session's limits, size
        check and error handling (``on_message``), with this dialect's ``parse``."""
        await self.on_message(raw)

    # -- subscriptions ---------------------------------------------------------

    async def subscribe_seed(self, names: tuple[str, ...]) -> list[str]:
        """Subscribe the seed's channel names; the names now subscribed."""
        assert self.principal is not None
        user = self.principal.user_id
        if self.resume is not None and not self._opened:
            # The mark kept elsewhere (another node, before a restart) first, then
            # opened (which drops it there): the other order lost it on every move.
            await self.resume.load(user, self._timers.time())
            if self.closed:
                return []
            self.resume.opened(user)
            self._opened = True
            self.acks = Acks(partial(self.resume.positions, user))
        now = self._timers.time()
        items = []
        for name in dict.fromkeys(names):
            hub_name = sio.SEED_CHANNELS.get(name, name)
            since = self.resume.since(user, hub_name, now) if self.resume is not None else None
            if since is not None and not self._missed(hub_name, user, since[0]):
                # Nothing missed: a reconnect and a fresh page load look alike here,
                # so the current state (snapshot, list) serves both.
                since = None
            items.append(canonical.SubItem(hub_name, None, since))
        await self.subscribe(tuple(items))
        for item in items:
            if item.name in sio.LIST_EVENTS and item.name in self.subs and not self.closed:
                await self.lists.join(item.name, self.principal, self.conn)
        if self.acks is not None:
            self.acks.settled({i.name: i.since for i in items if i.since is not None})
        return [sio.HUB_TO_SEED.get(i.name, i.name) for i in items if i.name in self.subs]

    async def _send_snapshot(self, sub: Subscription) -> None:
        # Positions and orders arrive as the feed's full list, not item by item.
        if sub.channel.name not in sio.LIST_EVENTS:
            await super()._send_snapshot(sub)

    def unsettled(self) -> tuple[str, ...]:
        """The channels whose latest events may not be in a list sent yet (a list
        being coalesced or built): a ping's note keeps their acknowledged position."""
        if self.principal is None:
            return ()
        return self.lists.unsettled(self.principal.user_id)

    def _missed(self, channel: str, user: str, offset: int) -> bool:
        stream = self.hub.streams.find(channel, user)
        return stream is not None and stream.offset > offset

    def unsubscribe_seed(self, names: tuple[str, ...]) -> list[str]:
        """Unsubscribe the seed's channel names; the names that are channels."""
        assert self.principal is not None
        hub_names = tuple(sio.SEED_CHANNELS.get(n, n) for n in dict.fromkeys(names))
        self.unsubscribe(hub_names)
        for name in hub_names:
            if name in sio.LIST_EVENTS and name not in self.subs:
                self.lists.leave(name, self.principal.user_id, self.conn)
        return [sio.HUB_TO_SEED.get(n, n) for n in hub_names if n in self.hub.channels]
