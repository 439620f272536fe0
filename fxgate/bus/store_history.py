"""The local bus's durable history: the trading channels' messages kept in the store.

The hub numbers each message and hands the ones of channels with a ``history_ttl`` to
:meth:`StoreHistory.record`, which only appends to a list: the hot path never waits for
a disk. A task writes the list in batches (every ``interval`` seconds, or sooner when it
grows), and trims each stream to its channel's ``history_size``.

"Never a silent gap" across a crash: a trading record itself is stored before it is
announced (DESIGN.md), but its history entry may still be in the list when the process
dies. So the store keeps the epoch in use with a clean-shutdown marker (``run``): a
clean stop writes the last batch and sets the marker, and the next start goes on with
the same epoch and each stream's offset (``heads``), so clients resume across the
restart. A start after a crash finds the marker unset and takes a new epoch: every
client's ``since`` then names an epoch that is gone, and it gets a snapshot. Entries
that could not be written while the process ran (the store away for longer than the
list may grow) leave a hole in the offsets, which recovery refuses too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fxgate.hub.history import HistoryPage
from fxgate.hub.hub import Channel, Hub
from fxgate.hub.streams import new_epoch
from fxgate.services.ports.store.history import HistoryEntry, HistoryRun, HistoryStore

log = logging.getLogger(__name__)

#: Seconds between deletions of expired entries (MongoDB's TTL index does it too).
PURGE_EVERY = 600.0


class StoreHistory:
    def __init__(
        self,
        history: HistoryStore,
        hub: Hub,
        *,
        interval: float = 0.05,
        batch: int = 500,
        max_pending: int = 100_000,
    ) -> None:
        self._store = history
        self._hub = hub
        self._interval = interval
        self._batch = batch
        self._max_pending = max_pending
        self._pending: list[HistoryEntry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._trimmed: dict[tuple[str, str], int] = {}
        self._sizes: dict[str, int] = {}
        #: Entries dropped unwritten (the store away too long): this run is not clean.
        self.lost = 0
        self.epoch = hub.streams.epoch

    async def start(self) -> None:
        run = await self._store.run()
        if run is not None and run.clean:
            self.epoch = run.epoch
            heads = await self._store.heads(run.epoch)
        else:
            if run is not None:
                log.warning(
                    "the last run did not stop cleanly: trading history starts a new epoch"
                    " (resuming clients get snapshots)"
                )
            self.epoch = new_epoch()
            heads = {}
        await self._store.purge(datetime.now(UTC), self.epoch)
        await self._store.set_run(HistoryRun(self.epoch, clean=False))
        self._hub.streams.restore(self.epoch, heads)
        self._hub.recorder = self.record
        self._hub.durable = self
        self._task = asyncio.get_running_loop().create_task(self._flusher(), name="history")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._hub.recorder = None
        try:
            await self.flush()
            if not self._pending and not self.lost:
                await self._store.set_run(HistoryRun(self.epoch, clean=True))
        except Exception:
            log.exception(
                "trading history not written at shutdown: the next start takes a new epoch"
            )

    def record(self, ch: Channel, key: str, envelope: Mapping[str, Any]) -> None:
        """From the hub's fan-out: append, never wait."""
        self._sizes[ch.name] = ch.history_size
        expires = datetime.now(UTC) + timedelta(seconds=ch.history_ttl)
        self._pending.append(
            HistoryEntry(
                ch.name,
                key,
                str(envelope["epoch"]),
                int(envelope["offset"]),
                dict(envelope),
                expires,
            )
        )
        if len(self._pending) >= self._batch:
            self._wake.set()

    async def _flusher(self) -> None:
        loop = asyncio.get_running_loop()
        purged = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
                if loop.time() - purged > PURGE_EVERY:
                    purged = loop.time()
                    await self._store.purge(datetime.now(UTC), self.epoch)
            except Exception as exc:
                log.warning("trading history not written yet (%s); retrying", exc)
                await asyncio.sleep(min(1.0, self._interval * 20))

    async def flush(self) -> None:
        """Write what is pending; on failure it stays pending (bounded: beyond
        ``max_pending`` the oldest are dropped, counted in ``lost``)."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await self._store.append(batch)
        except BaseException:
            self._pending = batch + self._pending
            over = len(self._pending) - self._max_pending
            if over > 0:
                del self._pending[:over]
                self.lost += over
            raise
        tops: dict[tuple[str, str, str], int] = {}
        for e in batch:
            k = (e.channel, e.key, e.epoch)
            tops[k] = max(tops.get(k, 0), e.offset)
        for (channel, key, epoch), top in tops.items():
            size = self._sizes.get(channel, 0)
            upto = top - size
            # Trim in steps of half the size, not on every batch.
            if size and upto - self._trimmed.get((channel, key), 0) >= max(1, size // 2):
                await self._store.trim(channel, key, epoch, upto)
                self._trimmed[(channel, key)] = upto

    async def read(self, channel: str, key: str, after: int, limit: int) -> HistoryPage | None:
        entries = await self._store.read(
            channel, key, self.epoch, after, limit + 1, datetime.now(UTC)
        )
        top = entries[-1].offset if entries else after
        return HistoryPage(self.epoch, top, [(e.offset, e.envelope) for e in entries])
