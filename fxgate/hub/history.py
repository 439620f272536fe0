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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


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
