"""The daily REST quota's counting (``fxgate.services.quota``), in memory.

Several :class:`ApiQuota` over one store stand for the workers and nodes of one
deployment; the store is the in-memory one, counting its writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

from fxgate.services.quota import ApiQuota, LocalUsage

NOON = 1_705_752_000.0  # 2024-01-20 12:00 UTC


class Clock:
    def __init__(self, t: float = NOON) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class CountingStore(LocalUsage):
    """The in-memory store, counting round trips; ``gate`` holds the answer to an add
    (already applied, as SQLite's worker commits a statement whose caller went away)."""

    def __init__(self) -> None:
        super().__init__()
        self.trips = 0
        #: The writes in the order they completed: "add" (once past the gate), "take".
        self.done: list[str] = []
        self.gate: asyncio.Event | None = None
        #: Set when an add is held at the gate: the write is under way.
        self.held = asyncio.Event()

    async def add_api_calls(self, day: str, counts: Mapping[str, int]) -> dict[str, int]:
        self.trips += 1
        totals = await super().add_api_calls(day, counts)
        if self.gate is not None:
            self.held.set()
            await self.gate.wait()
        self.done.append("add")
        return totals

    async def take_api_call(self, day: str, user_id: str, limit: int) -> int | None:
        self.trips += 1
        self.done.append("take")
        return await super().take_api_call(day, user_id, limit)

    async def api_calls(self, day: str, user_ids: Collection[str]) -> dict[str, int]:
        self.trips += 1
        return await super().api_calls(day, user_ids)


async def test_far_from_the_limit_calls_are_batched_into_one_write_per_flush() -> None:
    store = CountingStore()
    q = ApiQuota(store, Clock(), margin=10)
    assert [await q.hit("ann", 1000) for _ in range(50)] == [None] * 50
    assert store.trips == 1  # the first call read ann's stored count; the rest are local
    assert q.remaining("ann", 1000) == 950
    assert await store.api_calls("2024-01-20", ["ann"]) == {"ann": 0}
    await q.flush()
    assert await store.api_calls("2024-01-20", ["ann"]) == {"ann": 50}
    assert q.remaining("ann", 1000) == 950


async def test_the_flush_reads_back_what_other_processes_counted() -> None:
    store = LocalUsage()
    a, b = ApiQuota(store, Clock(), margin=10), ApiQuota(store, Clock(), margin=10)
    for _ in range(30):
        await a.hit("ann", 1000)
    await a.flush()
    await b.hit("ann", 1000)  # b reads the stored 30 first
    assert b.remaining("ann", 1000) == 969
    for _ in range(20):
        await a.hit("ann", 1000)
    await a.flush()
    await b.flush()
    assert b.remaining("ann", 1000) == 949  # 30 + 20 from a, 1 from b


async def test_the_last_calls_are_exact_across_processes() -> None:
    store = LocalUsage()
    clock = Clock()
    workers = [ApiQuota(store, clock, margin=5) for _ in range(3)]
    for _ in range(8):  # far from the limit: batched
        await workers[0].hit("ann", 12)
    await workers[0].flush()
    results = await asyncio.gather(*(w.hit("ann", 12) for w in workers for _ in range(4)))
    assert results.count(None) == 4  # 8 + 4 = 12, and not one more
    assert all(r is not None and r > 0 for r in results if r is not None)
    assert await store.api_calls("2024-01-20", ["ann"]) == {"ann": 12}
    assert all(w.remaining("ann", 12) == 0 for w in workers)


async def test_a_refused_call_tells_the_seconds_to_midnight_and_is_not_counted() -> None:
    store = LocalUsage()
    q = ApiQuota(store, Clock(NOON), margin=100)
    assert await q.hit("ann", 1) is None
    assert await q.hit("ann", 1) == 12 * 3600
    assert await store.api_calls("2024-01-20", ["ann"]) == {"ann": 1}
    assert await q.hit("bob", 0) is None  # no quota: nothing counted
    assert q.remaining("bob", 0) is None


async def test_a_new_day_starts_afresh_and_drops_the_days_before_yesterday() -> None:
    store = LocalUsage()
    clock = Clock(NOON - 2 * 86_400)
    q = ApiQuota(store, clock, margin=0)
    await q.hit("ann", 5)
    await q.flush()
    clock.t = NOON - 86_400
    await q.hit("ann", 5)
    await q.flush()
    clock.t = NOON
    assert q.remaining("ann", 5) == 5
    await q.hit("ann", 5)
    await q.flush()
    assert await store.api_calls("2024-01-18", ["ann"]) == {"ann": 0}  # purged
    assert await store.api_calls("2024-01-19", ["ann"]) == {"ann": 1}  # yesterday stays
    assert await store.api_calls("2024-01-20", ["ann"]) == {"ann": 1}


async def test_a_flush_cancelled_half_way_is_finished_not_repeated() -> None:
    store = CountingStore()
    q = ApiQuota(store, Clock(), margin=0)
    for _ in range(5):
        await q.hit("ann", 100)
    store.gate = asyncio.Event()
    first = asyncio.ensure_future(q.flush())
    await asyncio.wait_for(store.held.wait(), 5)
    first.cancel()  # shutdown cancels the flusher while its write is under way
    second = asyncio.ensure_future(q.flush())  # the flush on stop
    store.gate.set()
    await second
    assert await store.api_calls("2024-01-20", ["ann"]) == {"ann": 5}
    assert q.remaining("ann", 100) == 95


async def test_a_watched_user_sees_calls_made_elsewhere() -> None:
    store = LocalUsage()
    a, b = ApiQuota(store, Clock(), margin=0), ApiQuota(store, Clock(), margin=0)
    await b.watch("ann")  # a dashboard on b
    assert b.remaining("ann", 100) == 100
    for _ in range(7):
        await a.hit("ann", 100)
    await a.flush()
    for _ in range(5):  # b re-reads its watched users every few flushes
        await b.flush()
    assert b.remaining("ann", 100) == 93
    b.unwatch("ann")


async def test_a_watched_user_outlives_midnight() -> None:
    store = LocalUsage()
    clock = Clock(NOON - 86_400)
    q = ApiQuota(store, clock, margin=0)
    await q.watch("ann")
    await q.hit("ann", 10)
    clock.t = NOON  # the next day: the counts start afresh, the dashboard stays
    for _ in range(5):
        await q.flush()
    assert q.remaining("ann", 10) == 10
    assert await store.api_calls("2024-01-19", ["ann"]) == {"ann": 0}  # lost with its day


async def test_forgotten_users_are_read_again_from_the_store(monkeypatch: Any) -> None:
    monkeypatch.setattr("fxgate.services.quota.MAX_USERS", 2)
    store = CountingStore()
    q = ApiQuota(store, Clock(), margin=0)
    for user in ("ann", "bob", "cid"):
        await q.hit(user, 100)
    await q.flush()  # three users remembered, none pending: all forgotten
    trips = store.trips
    await q.hit("ann", 100)
    assert store.trips == trips + 1  # ann's count read again
    assert q.remaining("ann", 100) == 98


async def test_the_exact_path_waits_for_a_flush_of_the_same_users_calls() -> None:
    store = CountingStore()
    q = ApiQuota(store, Clock(), margin=5)
    for _ in range(4):  # 10 - 4 > 5: batched
        await q.hit("ann", 10)
    store.gate = asyncio.Event()
    flushing = asyncio.ensure_future(q.flush())
    await asyncio.wait_for(store.held.wait(), 5)
    assert await q.hit("ann", 10) is None  # batched still: 10 - 4 > 5
    taking = asyncio.ensure_future(q.hit("ann", 10))  # exact: waits for the flush
    store.gate.set()
    await flushing
    assert await taking is None
    # The exact take came after the held write completed, not beside it.
    assert store.done[-2:] == ["add", "take"]
    results = [await q.hit("ann", 10) for _ in range(6)]
    assert results.count(None) == 4  # 4 + 1 + 1 + 4 = 10
    await q.flush()
    assert await store.api_calls("2024-01-20", ["ann"]) == {"ann": 10}
