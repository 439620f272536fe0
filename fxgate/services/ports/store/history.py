"""The history area: the trading channels' messages kept for ``since`` recovery.

With the local bus the hub numbers every message and keeps recent ones in memory; this
area keeps them across restarts, so that a client resuming after one gets exactly the
messages it missed (``fxgate.bus.store_history`` writes them, in batches, off the hot
path). Entries belong to a stream (channel, key) and an epoch, and carry the offset the
hub gave them. ``heads`` outlive the entries (a stream whose entries all expired still
goes on from its offset, never reusing one in the same epoch), and ``run`` records the
epoch in use and whether the daemon that used it stopped cleanly: after a crash the last
entries may never have been written, so the next start takes a new epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fxgate.services.ports.store.records import Doc


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    channel: str
    key: str
    epoch: str
    offset: int
    #: The canonical envelope as the hub sent it.
    envelope: Doc
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryRun:
    epoch: str
    #: The daemon using ``epoch`` stopped after writing every entry.
    clean: bool


class HistoryStore(Protocol):
    async def append(self, entries: Sequence[HistoryEntry]) -> None:
        """Keep ``entries`` (one batch, one write) and raise each stream's head to its
        highest offset; an entry kept already (stream, epoch, offset) is replaced."""
        ...

    async def read(
        self, channel: str, key: str, epoch: str, after: int, limit: int, now: datetime
    ) -> list[HistoryEntry]:
        """The stream's entries of ``epoch`` with an offset above ``after`` that have
        not expired at ``now``, ascending, at most ``limit``."""
        ...

    async def heads(self, epoch: str) -> dict[tuple[str, str], int]:
        """Each stream's highest offset kept in ``epoch``, by (channel, key)."""
        ...

    async def trim(self, channel: str, key: str, epoch: str, upto: int) -> int:
        """Delete the stream's entries of ``epoch`` with an offset up to ``upto`` (the
        channel's ``history_size`` is what recovery keeps); how many went."""
        ...

    async def purge(self, now: datetime, epoch: str) -> int:
        """Delete entries expired at ``now``, and entries and heads of epochs other
        than ``epoch`` (they can no longer recover anyone); how many entries went."""
        ...

    async def run(self) -> HistoryRun | None:
        """The epoch in use and how its daemon stopped; None before the first start."""
        ...

    async def set_run(self, run: HistoryRun) -> None: ...
