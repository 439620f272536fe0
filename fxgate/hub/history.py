"""The durable history port: what the hub asks when its memory cannot recover a client.

Memory (:class:`fxgate.hub.streams.Stream`) holds the recent messages a node saw since
it started; a client that resumes after a daemon restart or on another node needs the
history that outlives both: Redis with the Redis bus, the store with the local bus. The
hub reads it only on the rare path (a ``since`` that memory cannot answer), never per
message; how entries get there is the bus's business (Redis's publish script appends
them atomically; the local bus records them off the hot path, see
:mod:`fxgate.bus.store_history`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A stream's kept messages after some offset, and where the stream stands."""

    #: The epoch the kept history belongs to; a client's other epoch cannot recover.
    epoch: str
    #: The stream's latest offset as the history knows it (it may run ahead of the
    #: node's memory with Redis, messages still in flight, or lag behind it with the
    #: store, entries not yet flushed).
    top: int
    #: (offset, envelope), ascending; at most the ``limit`` asked for plus one.
    entries: list[tuple[int, Mapping[str, Any]]]


class DurableHistory(Protocol):
    async def read(self, channel: str, key: str, after: int, limit: int) -> HistoryPage | None:
        """The stream's entries after ``after`` (at most ``limit + 1``), or None when
        the history cannot be reached (Redis down): the client gets a snapshot."""
        ...


class MarkStore(Protocol):
    """Where a server-side resume mark (:class:`fxgate.hub.resume.ResumeBook`) is kept
    beyond the process, beside the history it points into."""

    def put_mark(self, user_id: str, mark: Mapping[str, Any], ttl: float) -> None:
        """Keep ``mark`` for ``ttl`` seconds; never blocks (written in the background)."""

    async def take_mark(self, user_id: str) -> Mapping[str, Any] | None:
        """The user's mark, removed (a mark is used once), or None."""
        ...

    def drop_mark(self, user_id: str) -> None:
        """Forget the user's mark (a connection opened: it is a fresh subscriber or has
        taken the mark already); never blocks."""


@runtime_checkable
class SharedPositions(Protocol):
    """Where streams stand in a history shared by several nodes (Redis), asked for a
    resume mark of streams this node holds no message of.

    The node cannot tell such a stream's epoch by itself: the epoch it would make up is
    not the one the shared history gives the stream's first message, and a mark with
    it never resumes. So, as Centrifuge does when a stream's position is read, a stream
    the history has no trace of gets its epoch there now (offset 0), and the first
    message published keeps it."""

    async def positions(
        self, streams: Sequence[tuple[str, str]]
    ) -> Mapping[tuple[str, str], tuple[int, str]] | None:
        """(offset, epoch) of each (channel, key), creating the epoch of one that does
        not exist yet; None when the history cannot be reached (the mark stays as it
        was: a snapshot on resume, never a gap)."""
        ...
