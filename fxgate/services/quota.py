"""The daily REST quota (``api_calls_per_day``), counted in the store.

The count must survive a restart and be one count for every process that serves the
user (``fxgate serve --workers N``, several nodes), so it lives in the store's usage
area. Writing it on every request would put a store round trip (a thread hop and a
``BEGIN IMMEDIATE`` on SQLite's one write lock, shared with every other worker on the
file; a network round trip on MongoDB) in front of every REST call. So the count is
**batched far from the limit and exact near it**:

- While a user has more than :data:`EXACT_MARGIN` calls left, a call is a local
  increment, and every :data:`FLUSH_INTERVAL` seconds the increments of every user are
  added to the store in one write, which answers each user's total over all processes
  (the authoritative count read back). Nothing is awaited on the request's path.
- The last ``EXACT_MARGIN`` calls of a user's day are taken one by one with the store's
  atomic "count one if below the limit", so the quota itself is exact across
  processes: of two workers taking the last call, one gets it.

What batching costs is bounded: between two flushes another process may have used
calls this one does not know of yet, so a user can get at most the calls each process
allows in one interval beyond the point where the exact path begins, and never more
than the per-minute rate limit lets through in that time (100 a minute: about two
calls a second per process). A user's first call in a process, or after a restart,
reads the stored count first, and stopping flushes what is pending, so a restart
neither forgets calls nor grants a new quota.

A day is a UTC calendar day; counts of the days before yesterday are deleted when the
day changes. A tier without a quota (0) counts nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from fxgate.services.ports.store.usage import UsageStore

log = logging.getLogger(__name__)

#: Seconds between two flushes of the batched counts.
FLUSH_INTERVAL = 1.0
#: The last calls of a quota, taken one by one in the store.
EXACT_MARGIN = 100
#: Flushes between two re-reads of the watched users' counts (open dashboards).
REFRESH_EVERY = 5
#: Users remembered in one process before those with nothing pending are forgotten.
MAX_USERS = 100_000


def utc_day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


@dataclass(slots=True)
class _Count:
    #: The store's total as last seen (None: not read yet in this process).
    stored: int | None = None
    #: Calls allowed here and not yet added to the store.
    pending: int = 0
    #: Of ``pending``, those in a flush under way.
    sending: int = 0

    def used(self) -> int:
        return (self.stored or 0) + self.pending

    def seen(self, total: int) -> None:
        # Totals only grow within a day: an older answer never lowers a newer one.
        self.stored = total if self.stored is None else max(self.stored, total)


class ApiQuota:
    """Each user's REST calls today, shared through a :class:`UsageStore`."""

    def __init__(
        self,
        store: UsageStore,
        clock: Callable[[], float] = time.time,
        *,
        interval: float = FLUSH_INTERVAL,
        margin: int = EXACT_MARGIN,
    ) -> None:
        self.store = store
        self._clock = clock
        self.interval = interval
        self.margin = margin
        self._day = utc_day(clock())
        self._purged: str | None = None
        self._counts: dict[str, _Count] = {}
        self._watched: dict[str, int] = {}
        self._flushes = 0
        self._flushing: asyncio.Task[None] | None = None

    # -- the request's side --------------------------------------------------------------

    def _roll(self) -> str:
        day = utc_day(self._clock())
        if day != self._day:
            # Pending calls of the day that ended no longer limit anyone.
            self._day = day
            self._counts = {}
        return day

    def _count(self, user_id: str) -> _Count:
        self._roll()
        c = self._counts.get(user_id)
        if c is None:
            c = self._counts[user_id] = _Count()
        return c

    async def _load(self, user_id: str, c: _Count) -> None:
        day = self._day
        totals = await self.store.api_calls(day, (user_id,))
        if day == self._day:
            c.seen(totals.get(user_id, 0))

    def retry_after(self) -> int:
        """Whole seconds until the next UTC midnight, when the quota starts again."""
        now = self._clock()
        return max(1, int((now // 86_400 + 1) * 86_400 - now))

    async def hit(self, user_id: str, quota: int) -> int | None:
        """Count one call against ``quota`` (0: none). None when it is allowed, else
        the seconds until the quota starts again; a refused call is not counted."""
        if not quota:
            return None
        c = self._count(user_id)
        if c.stored is None:
            await self._load(user_id, c)
        if c.used() >= quota:
            return self.retry_after()
        if quota - c.used() > self.margin:
            c.pending += 1
            return None
        # The exact path: this call only if the stored total plus what this process
        # has not sent yet stays within the quota. A flush of this user's calls under
        # way is waited for first, so that they are counted once, either here or there.
        if c.sending and self._flushing is not None:
            await asyncio.wait({self._flushing})
        total = await self.store.take_api_call(self._day, user_id, quota - c.pending)
        if total is None:
            c.seen(quota - c.pending)
            return self.retry_after()
        c.seen(total)
        return None

    def remaining(self, user_id: str, quota: int) -> int | None:
        """Calls left today under ``quota`` as this process knows it (None: no quota);
        a watched user's count is kept fresh by the flushes."""
        if not quota:
            return None
        return max(0, quota - self._count(user_id).used())

    async def watch(self, user_id: str) -> None:
        """Keep ``user_id``'s count fresh while they watch it (a dashboard's ``usage``):
        read it now, and again every few flushes, calls on other workers included."""
        self._watched[user_id] = self._watched.get(user_id, 0) + 1
        c = self._count(user_id)
        if c.stored is None:
            await self._load(user_id, c)

    def unwatch(self, user_id: str) -> None:
        n = self._watched.get(user_id, 0) - 1
        if n > 0:
            self._watched[user_id] = n
        else:
            self._watched.pop(user_id, None)

    # -- the background side ---------------------------------------------------------------

    async def flush(self) -> None:
        """Add the pending calls to the store and read back the totals (the watched
        users' too, every few flushes); drop the days before yesterday once a day.

        The work runs shielded: a flush cancelled half-way (shutdown) would leave the
        store with calls that are still pending here, and the next flush would add them
        twice; so a cancelled caller leaves it running, and the next flush waits for it.
        """
        if self._flushing is not None:
            await asyncio.wait({self._flushing})
        task = self._flushing = asyncio.get_running_loop().create_task(self._flush())
        task.add_done_callback(self._flushed)
        await asyncio.shield(task)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        if self._flushing is task:
            self._flushing = None
        if not task.cancelled():
            task.exception()  # retrieved: a cancelled caller's flush fails quietly

    async def _flush(self) -> None:
        day = self._roll()
        sent = {u: c.pending for u, c in self._counts.items() if c.pending}
        if sent:
            await self._send(day, sent)
        self._flushes += 1
        if self._flushes % REFRESH_EVERY == 0:
            await self._refresh(day, [u for u in self._watched if u not in sent])
        if self._purged != day:
            yesterday = utc_day(self._clock() - 86_400)
            await self.store.purge_api_calls(yesterday)
            self._purged = day
        if len(self._counts) > MAX_USERS:
            self._evict()

    async def _send(self, day: str, sent: Mapping[str, int]) -> None:
        counts = self._counts
        for user_id, n in sent.items():
            counts[user_id].sending = n
        try:
            totals = await self.store.add_api_calls(day, sent)
        finally:
            for user_id in sent:
                counts[user_id].sending = 0
        if counts is not self._counts:
            return  # the day changed meanwhile: those counts are gone
        for user_id, n in sent.items():
            c = counts[user_id]
            c.pending -= n
            c.seen(totals.get(user_id, 0))

    async def _refresh(self, day: str, user_ids: list[str]) -> None:
        if not user_ids:
            return
        totals = await self.store.api_calls(day, user_ids)
        if day == self._day:
            for user_id, total in totals.items():
                self._count(user_id).seen(total)

    def _evict(self) -> None:
        """Forget the users with nothing pending and no dashboard: safe, as the store
        has their count and their next call reads it again."""
        idle = [u for u, c in self._counts.items() if not c.pending and u not in self._watched]
        for user_id in idle:
            del self._counts[user_id]

    async def run(self) -> None:
        """Flush every ``interval`` seconds until cancelled; a store that fails keeps
        the calls pending for the next flush."""
        failing = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception as exc:
                if not failing:  # once per outage, not once a second
                    log.warning("could not write the REST call counts: %s", exc)
                failing = True
            else:
                if failing:
                    log.info("REST call counts written again")
                failing = False


class LocalUsage:
    """A :class:`UsageStore` in this process's memory: for a meter built without a
    store (tests of the pure layers); a restart forgets it."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], int] = {}

    async def add_api_calls(self, day: str, counts: Mapping[str, int]) -> dict[str, int]:
        for user_id, n in counts.items():
            self._calls[day, user_id] = self._calls.get((day, user_id), 0) + max(0, n)
        return await self.api_calls(day, counts.keys())

    async def take_api_call(self, day: str, user_id: str, limit: int) -> int | None:
        total = self._calls.get((day, user_id), 0)
        if total >= limit:
            return None
        self._calls[day, user_id] = total + 1
        return total + 1

    async def api_calls(self, day: str, user_ids: Collection[str]) -> dict[str, int]:
        return {u: self._calls.get((day, u), 0) for u in user_ids}

    async def purge_api_calls(self, before: str) -> int:
        old = [k for k in self._calls if k[0] < before]
        for k in old:
            del self._calls[k]
        return len(old)
