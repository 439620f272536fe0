"""The history area: entries by stream and epoch, heads that outlive them, the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.history import HistoryEntry, HistoryRun
from tests.store.conftest import Backend

# Real time: MongoDB's TTL index (and mongomock's) drops entries already expired.
T0 = datetime.now(UTC).replace(microsecond=0)
LATER = T0 + timedelta(minutes=10)


def entry(offset: int, key: str = "u1", epoch: str = "e1", **kw: object) -> HistoryEntry:
    envelope = {
        "type": "order",
        "channel": "orders",
        "data": {"orderId": f"o{offset}", "price": 1.5, "nested": {"a.b": [1, "x"]}},
        "timestamp": "2026-01-01T00:00:00.000Z",
        "id": f"msg_{offset}",
        "offset": offset,
        "epoch": epoch,
    }
    fields: dict[str, object] = {
        "channel": "orders",
        "key": key,
        "epoch": epoch,
        "offset": offset,
        "envelope": envelope,
        "expires_at": LATER,
        **kw,
    }
    return HistoryEntry(**fields)  # type: ignore[arg-type]


async def test_entries_are_read_after_an_offset_in_order_by_stream_and_epoch(
    store: Store,
) -> None:
    await store.history.append([entry(3), entry(1), entry(2), entry(1, key="u2")])
    await store.history.append([entry(1, epoch="e0")])
    await store.history.append([])
    got = await store.history.read("orders", "u1", "e1", 0, 10, T0)
    assert [e.offset for e in got] == [1, 2, 3]
    assert got[0] == entry(1)
    assert [e.offset for e in await store.history.read("orders", "u1", "e1", 1, 1, T0)] == [2]
    assert await store.history.read("orders", "u1", "e1", 3, 10, T0) == []
    assert await store.history.read("orders", "u9", "e1", 0, 10, T0) == []
    assert await store.history.read("trades", "u1", "e1", 0, 10, T0) == []
    # Expired entries are not read, whether or not they are deleted yet.
    assert await store.history.read("orders", "u1", "e1", 0, 10, LATER) == []
    # The same entry again replaces it.
    replaced = entry(2, envelope={"data": {"v": 2}})
    await store.history.append([replaced])
    got = await store.history.read("orders", "u1", "e1", 1, 10, T0)
    assert got[0] == replaced


async def test_heads_outlive_trimmed_and_purged_entries_of_their_epoch(store: Store) -> None:
    await store.history.append([entry(o) for o in range(1, 6)] + [entry(2, key="u2")])
    await store.history.append([entry(7, epoch="old")])
    assert await store.history.heads("e1") == {("orders", "u1"): 5, ("orders", "u2"): 2}
    assert await store.history.trim("orders", "u1", "e1", 3) == 3
    assert [e.offset for e in await store.history.read("orders", "u1", "e1", 0, 10, T0)] == [4, 5]
    await store.history.append([entry(4)])  # an older offset never lowers the head
    assert (await store.history.heads("e1"))[("orders", "u1")] == 5

    assert await store.history.purge(T0, "e1") == 1  # the other epoch's entry
    assert await store.history.heads("old") == {}
    assert await store.history.heads("e1") == {("orders", "u1"): 5, ("orders", "u2"): 2}
    assert await store.history.purge(LATER, "e1") == 3  # every entry expired
    assert await store.history.read("orders", "u1", "e1", 0, 10, T0) == []
    assert await store.history.heads("e1") == {("orders", "u1"): 5, ("orders", "u2"): 2}


async def test_the_run_is_kept_across_reopening(backend: Backend) -> None:
    first = await backend.open()
    assert await first.history.run() is None
    await first.history.set_run(HistoryRun("e1", clean=False))
    await first.history.set_run(HistoryRun("e2", clean=True))
    await first.history.append([entry(1, epoch="e2")])
    await first.close()
    again = await backend.open()
    assert await again.history.run() == HistoryRun("e2", clean=True)
    assert [e.offset for e in await again.history.read("orders", "u1", "e2", 0, 5, T0)] == [1]
