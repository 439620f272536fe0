"""Server-side resume for clients that cannot send an offset (every dialect but ``/api/ws``).

A Socket.IO dashboard (seed 002) reconnects by itself and re-subscribes, but it has no
way to say "I had your account stream up to offset 41". So the server remembers it for
the user: when a user's *last* connection closes, the book notes where each of the
user's per-user streams with history stood (``orders``, ``positions``, ``account``,
``trades``, ``alerts``...). When the user's next connection subscribes within
``ws.recovery_window`` seconds, the session asks :meth:`ResumeBook.since` for that
channel and hands the answer to the hub's ordinary ``since`` recovery
(:meth:`fxgate.hub.hub.Hub.replay`): the missed events are replayed in order, or, when
the hub no longer holds them all (history too short, another epoch after a restart),
the session sends a fresh snapshot (the dialect's full lists) as it always does.

While the user still has another connection open nothing is noted: that connection saw
every event, and a second tab opening is a fresh subscriber, not a resume.

Except when that other connection was the reconnect itself: a client whose network
died silently comes back on a new connection before the server has noticed the old one
is dead (its ping timeout), so the new one is not the user's only connection, and when
the old one closes it is not the last. What was written into the dead socket after the
client's last pong, and before the new connection's streams began, would then reach
neither. So a connection that registers with the book (``opened(user, conn)``, a
:class:`LateReceiver`) is told, when another connection of the user *at the same
endpoint* closes with a mark behind where its own streams began (``Acks.start``), which
events it missed: ``conn.replay_late(channel, since, upto)``. What it sends of them is
its own choice: all of a channel of records (``Channel.records``: fills, alerts), of
state only the latest per item that nothing newer has replaced, nothing where its
snapshot already had the state. A second connection opened within a ping interval of
such a close gets those events too, which is the lesser evil (docs/dialects.md). Two
endpoints register: ``/ws/trading``, which sends no state at login, and
``/ws/dashboard``, whose state is current at the join but whose toasts (a fill's
``notification``) are news the dead socket took. The others start from the current
state and carry no records.

The API (no I/O, no clock of its own; the caller passes ``now``, monotonic seconds)::

    book = ResumeBook(hub, window=120.0)
    book.opened(user_id)                      # a connection of the user authenticated
    book.opened(user_id, conn)                # ... one that takes late replays
    book.closed(user_id, now)                 # it closed; the last one takes the mark
    book.closed(user_id, now, acks.mark())    # ... what that connection's client provably
                                              # read (fxgate.hub.acks), not the stream heads
    book.closed(user_id, now, acks.mark(), conn)  # ... and it takes no more late replays
    book.began(conn)                          # conn subscribed: what it is owed late, now
    since = book.since(user_id, "orders", now)  # (offset, epoch) or None
    # subscribe with SubItem("orders", since=since): hub.replay() does the rest

``since`` returns None when there is no mark, the mark is older than the window, or the
channel is not a per-user channel with history; a mark is used once per channel (the
next connection's subscription consumes it) and forgotten after the window.

Across restarts and nodes: given ``marks`` (a :class:`fxgate.hub.history.MarkStore`:
the Redis bus, or the local bus's store history), a mark is also kept where the
history is, and a session ``await book.load(user_id, now)`` before asking ``since``
takes it from there when this process has none (the user was on another node, or the
daemon restarted). Each stream's mark carries its own epoch (``Hub.position``), and the
replay goes through ``Hub.recover``, which reads the durable history past memory.

A stream the node holds no message of (offset 0: typically the user's first-ever
order, placed elsewhere while they were away) has no epoch the node can know: with a
shared history (``marks`` that are also :class:`fxgate.hub.history.SharedPositions`,
the Redis bus) its position is read there before the mark is kept, creating its epoch
when the stream does not exist yet, so the mark resumes into its first message. One
that exists there with messages the node never saw is left out of the mark (a
snapshot): marking past them could hide them, marking before them could replay what
the snapshot already showed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fxgate.hub.acks import Acks
from fxgate.hub.history import MarkStore, SharedPositions
from fxgate.hub.hub import Hub

log = logging.getLogger(__name__)


class LateReceiver(Protocol):
    """A connection that can take events it missed after its streams began."""

    acks: Acks | None

    def replay_late(self, channel: str, since: tuple[int, str], upto: int) -> None:
        """The events of ``channel`` after ``since`` up to offset ``upto`` (where its
        live stream began) never reached this user's client: send what of them it
        needs, knowing they are older than what it already has."""


def missed_late(
    envelopes: Iterable[Mapping[str, Any]], upto: int, *, records: bool, item: str
) -> list[Mapping[str, Any]]:
    """What a connection whose stream began at offset ``upto`` is sent late of the
    envelopes after a closing connection's mark (oldest first, up to the head): every
    record up to ``upto``; of state, the latest envelope per item (``data[item]``, an
    order's ticket) up to ``upto``, unless the item changed after ``upto``: that newer
    state went out live, and the older one would undo it on the client."""
    envelopes = list(envelopes)

    def offset(env: Mapping[str, Any]) -> int:
        value = env.get("offset")
        return value if isinstance(value, int) else 0

    def key(env: Mapping[str, Any]) -> object:
        data = env.get("data")
        found = data.get(item) if isinstance(data, Mapping) else None
        return found if found is not None else ("offset", offset(env))

    before = [env for env in envelopes if offset(env) <= upto]
    if records:
        return before
    newer = {key(env) for env in envelopes if offset(env) > upto}
    latest: dict[object, Mapping[str, Any]] = {}
    for env in before:
        k = key(env)
        latest.pop(k, None)  # re-inserted: the dict keeps the latest's order
        latest[k] = env
    return [env for k, env in latest.items() if k not in newer]


@dataclass(slots=True)
class _Mark:
    closed_at: float
    #: channel -> (offset, epoch) its (channel, user) stream had when the user went away
    offsets: dict[str, tuple[int, str]] = field(default_factory=dict)


class ResumeBook:
    """Per user: open connections, and where the streams stood when the last closed."""

    def __init__(self, hub: Hub, window: float, marks: MarkStore | None = None) -> None:
        self.hub = hub
        self.window = window
        self.marks = marks
        self._open: dict[str, int] = {}
        #: user -> their open connections that take late replays, oldest first
        self._late: dict[str, list[LateReceiver]] = {}
        #: A connection still subscribing when one of the user's closed behind it: the
        #: closing one's mark, per channel, kept until its streams begin (``began``).
        self._deferred: dict[LateReceiver, dict[str, tuple[int, str]]] = {}
        self._marks: dict[str, _Mark] = {}
        self._shared = marks if isinstance(marks, SharedPositions) else None
        #: user -> the reading of their unseen streams' positions, before the mark is kept
        self._settling: dict[str, asyncio.Task[None]] = {}

    def resumable(self) -> list[str]:
        """The channels a mark covers: per-user channels that keep history."""
        return [
            name
            for name, ch in self.hub.channels.items()
            if ch.scope == "user" and ch.history_size > 0
        ]

    def opened(self, user_id: str, conn: LateReceiver | None = None) -> None:
        self._open[user_id] = self._open.get(user_id, 0) + 1
        if conn is not None:
            self._late.setdefault(user_id, []).append(conn)
        if self.marks is not None:
            # Used here (or never to be: another connection is open), not elsewhere.
            self.marks.drop_mark(user_id)

    def closed(
        self,
        user_id: str,
        now: float,
        acked: Mapping[str, tuple[int, str]] | None = None,
        conn: LateReceiver | None = None,
    ) -> None:
        """A connection of ``user_id`` closed; when it was the last, note the offsets.

        ``acked``: where that connection's client provably read up to
        (:class:`fxgate.hub.acks.Acks`); streams that moved on since are marked there,
        so what was written into a dead socket is replayed. Without it, the heads.
        When others are still open, those whose streams began after ``acked`` are sent
        what they missed (:class:`LateReceiver`); ``conn``: the closing connection, if
        it registered as one."""
        receivers = self._late.get(user_id)
        if receivers is not None and conn is not None:
            if conn in receivers:
                receivers.remove(conn)
            if not receivers:
                del self._late[user_id]
        if conn is not None:
            self._deferred.pop(conn, None)
        left = self._open.get(user_id, 0) - 1
        if left > 0:
            self._open[user_id] = left
            if acked is not None and conn is not None:
                self._replay_late(user_id, acked, conn)
            return
        self._open.pop(user_id, None)
        offsets = {name: self.hub.position(name, user_id) for name in self.resumable()}
        if acked is not None:
            offsets = self._behind(offsets, acked)
        self._marks[user_id] = _Mark(now, offsets)
        self._expire(now)
        self._keep(user_id, self._marks[user_id])

    def _replay_late(
        self, user_id: str, acked: Mapping[str, tuple[int, str]], closing: LateReceiver
    ) -> None:
        """A connection closed behind where the user's newer ones began: the reconnect
        that came before the close (module docstring). Only connections of the same
        kind (endpoint) as the closing one can be its reconnect: a trading bot's socket
        is not a dashboard that came back. One whose streams have not begun yet
        (still subscribing) is told when they have (:meth:`began`)."""
        for conn in list(self._late.get(user_id, ())):
            if type(conn) is not type(closing):
                continue
            if conn.acks is None or conn.acks.start is None:
                deferred = self._deferred.setdefault(conn, {})
                for name, mark in acked.items():
                    kept = deferred.get(name)
                    if kept is None or (kept[1] == mark[1] and mark[0] < kept[0]):
                        deferred[name] = mark  # two closed behind it: the older mark
                continue
            self._send_late(conn, acked)

    def began(self, conn: LateReceiver) -> None:
        """``conn``'s streams began (its ``Acks.start`` is set): a connection of the user
        that closed behind it while it was still subscribing is replayed to it now. What
        lies between that mark and its start happened before its streams began, so it
        is as much missed as for a reconnect that had already subscribed."""
        acked = self._deferred.pop(conn, None)
        if acked is not None:
            self._send_late(conn, acked)

    def _send_late(self, conn: LateReceiver, acked: Mapping[str, tuple[int, str]]) -> None:
        start = conn.acks.start if conn.acks is not None else None
        if start is None:
            return
        for name in self.resumable():
            mark, began = acked.get(name), start.get(name)
            if mark is None or began is None or mark[1] != began[1]:
                continue  # another epoch: what it missed is not in this one
            if mark[0] < began[0]:
                try:
                    conn.replay_late(name, mark, began[0])
                except Exception:  # a bug, not the client's: the others still get theirs
                    log.exception("late replay failed", extra={"channel": name})

    def positions(self, user_id: str) -> dict[str, tuple[int, str]]:
        """Where each of the user's resumable streams stands now (what a connection
        notes when it writes a ping, ``fxgate.hub.acks``)."""
        return {name: self.hub.position(name, user_id) for name in self.resumable()}

    @staticmethod
    def _behind(
        heads: dict[str, tuple[int, str]], acked: Mapping[str, tuple[int, str]]
    ) -> dict[str, tuple[int, str]]:
        """The heads, except where the client's acknowledged position differs (a
        stream that moved on after the last pong): there, the acknowledged one. A
        stream unchanged since keeps its head as the book resolves it, and one that had
        no message yet when acknowledged resumes from its start in the epoch it took
        with its first message (the Redis bus's, not the node's default)."""
        behind = dict(heads)
        for name, head in heads.items():
            ack = acked.get(name)
            if ack is None or ack == head:
                continue
            behind[name] = (0, head[1]) if ack[0] == 0 else ack
        return behind

    async def load(self, user_id: str, now: float) -> None:
        """Take the user's mark from the shared ``marks`` when this process has none
        (the last connection closed on another node, or before a restart)."""
        settling = self._settling.get(user_id)
        if settling is not None:  # the mark of a connection that closed a moment ago
            await asyncio.wait({settling})
        if self.marks is None or user_id in self._marks:
            return
        try:
            kept: Any = await self.marks.take_mark(user_id)
        except Exception:
            return  # Redis or the store away: no resume, the snapshot as usual
        if not isinstance(kept, dict):
            return
        age = time.time() - float(kept.get("closedAt", 0))
        if age > self.window:
            return
        streams = kept.get("streams") or {}
        offsets = {str(k): (int(v[0]), str(v[1])) for k, v in streams.items()}
        self._marks[user_id] = _Mark(now - max(age, 0.0), offsets)

    def _keep(self, user_id: str, mark: _Mark) -> None:
        """Keep ``mark`` in ``marks``: at once, or once the shared history said where
        the streams this node holds no message of stand."""
        if self.marks is None:
            return
        closed_at = time.time()
        # Streams with no message here (whatever offset the mark took for the others).
        unseen = [name for name in mark.offsets if self.hub.position(name, user_id)[0] == 0]
        if self._shared is None or not unseen:
            self._put(user_id, mark, closed_at)
            return
        task = asyncio.get_running_loop().create_task(
            self._settle(user_id, mark, unseen, closed_at), name="resume-positions"
        )
        self._settling[user_id] = task
        task.add_done_callback(lambda t: self._settled(user_id, t))

    async def _settle(self, user_id: str, mark: _Mark, unseen: list[str], closed_at: float) -> None:
        assert self._shared is not None
        try:
            found = await self._shared.positions([(name, user_id) for name in unseen])
        except Exception:
            found = None  # the marks as they are: a snapshot on resume, never a gap
        for name in unseen if found is not None else ():
            offset, epoch = found[(name, user_id)]
            if name not in mark.offsets:
                continue  # used meanwhile
            if offset == 0:
                self.hub.adopt(name, user_id, epoch)
                mark.offsets[name] = (0, epoch)
            else:
                del mark.offsets[name]
        if self._marks.get(user_id) is mark and user_id not in self._open:
            self._put(user_id, mark, closed_at)

    def _settled(self, user_id: str, task: asyncio.Task[None]) -> None:
        if self._settling.get(user_id) is task:
            del self._settling[user_id]

    async def settle(self) -> None:
        """Return once the marks being settled are kept: a stopping node waits for
        them before its bus closes (cancelling the wait leaves them running)."""
        if self._settling:
            await asyncio.wait(list(self._settling.values()))

    def _put(self, user_id: str, mark: _Mark, closed_at: float) -> None:
        assert self.marks is not None
        streams = {k: list(v) for k, v in mark.offsets.items()}
        self.marks.put_mark(user_id, {"closedAt": closed_at, "streams": streams}, self.window)

    def since(self, user_id: str, channel: str, now: float) -> tuple[int, str] | None:
        """Where ``channel`` stood for ``user_id`` when their last connection closed,
        as the hub's ``since`` (offset, epoch); None when there is nothing to resume."""
        mark = self._marks.get(user_id)
        if mark is None:
            return None
        if now - mark.closed_at > self.window:
            del self._marks[user_id]
            return None
        since = mark.offsets.pop(channel, None)
        if not mark.offsets:
            del self._marks[user_id]
        return since

    def _expire(self, now: float) -> None:
        old = [u for u, m in self._marks.items() if now - m.closed_at > self.window]
        for user_id in old:
            del self._marks[user_id]

    def __len__(self) -> int:
        return len(self._marks)


__all__ = ["ResumeBook"]
