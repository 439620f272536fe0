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

The API (no I/O, no clock of its own; the caller passes ``now``, monotonic seconds)::

    book = ResumeBook(hub, window=120.0)
    book.opened(user_id)                      # a connection of the user authenticated
    book.closed(user_id, now)                 # it closed; the last one takes the mark
    since = book.since(user_id, "orders", now)  # (offset, epoch) or None
    # subscribe with SubItem("orders", since=since): hub.replay() does the rest

``since`` returns None when there is no mark, the mark is older than the window, or the
channel is not a per-user channel with history; a mark is used once per channel (the
next connection's subscription consumes it) and forgotten after the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fxgate.hub.hub import Hub


@dataclass(slots=True)
class _Mark:
    closed_at: float
    epoch: str
    #: channel -> the offset its (channel, user) stream had when the user went away
    offsets: dict[str, int] = field(default_factory=dict)


class ResumeBook:
    """Per user: open connections, and where the streams stood when the last closed."""

    def __init__(self, hub: Hub, window: float) -> None:
        self.hub = hub
        self.window = window
        self._open: dict[str, int] = {}
        self._marks: dict[str, _Mark] = {}

    def resumable(self) -> list[str]:
        """The channels a mark covers: per-user channels that keep history."""
        return [
            name
            for name, ch in self.hub.channels.items()
            if ch.scope == "user" and ch.history_size > 0
        ]

    def opened(self, user_id: str) -> None:
        self._open[user_id] = self._open.get(user_id, 0) + 1

    def closed(self, user_id: str, now: float) -> None:
        """A connection of ``user_id`` closed; when it was the last, note the offsets."""
        left = self._open.get(user_id, 0) - 1
        if left > 0:
            self._open[user_id] = left
            return
        self._open.pop(user_id, None)
        streams = self.hub.streams
        offsets: dict[str, int] = {}
        for name in self.resumable():
            stream = streams.find(name, user_id)
            offsets[name] = stream.offset if stream is not None else 0
        self._marks[user_id] = _Mark(now, streams.epoch, offsets)
        self._expire(now)

    def since(self, user_id: str, channel: str, now: float) -> tuple[int, str] | None:
        """Where ``channel`` stood for ``user_id`` when their last connection closed,
        as the hub's ``since`` (offset, epoch); None when there is nothing to resume."""
        mark = self._marks.get(user_id)
        if mark is None:
            return None
        if now - mark.closed_at > self.window:
            del self._marks[user_id]
            return None
        offset = mark.offsets.pop(channel, None)
        if not mark.offsets:
            del self._marks[user_id]
        if offset is None:
            return None
        return (offset, mark.epoch)

    def _expire(self, now: float) -> None:
        old = [u for u, m in self._marks.items() if now - m.closed_at > self.window]
        for user_id in old:
            del self._marks[user_id]

    def __len__(self) -> int:
        return len(self._marks)


__all__ = ["ResumeBook"]
