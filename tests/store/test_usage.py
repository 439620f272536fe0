"""The usage area: REST calls per user per UTC day, shared by every store instance."""

from __future__ import annotations

import asyncio

from fxgate.services.ports.store import Store
from tests.store.conftest import Backend

DAY = "2024-01-20"


async def test_added_calls_are_totalled_per_user_and_day(store: Store) -> None:
    assert await store.usage.add_api_calls(DAY, {"u1": 3, "u2": 1}) == {"u1": 3, "u2": 1}
    assert await store.usage.add_api_calls(DAY, {"u1": 2, "u3": 0}) == {"u1": 5, "u3": 0}
    assert await store.usage.add_api_calls("2024-01-21", {"u1": 1}) == {"u1": 1}
    assert await store.usage.api_calls(DAY, ["u1", "u2", "nobody"]) == {
        "u1": 5,
        "u2": 1,
        "nobody": 0,
    }
    assert await store.usage.api_calls(DAY, []) == {}


async def test_a_call_is_taken_only_below_the_limit(store: Store) -> None:
    assert await store.usage.take_api_call(DAY, "u1", 2) == 1
    assert await store.usage.take_api_call(DAY, "u1", 2) == 2
    assert await store.usage.take_api_call(DAY, "u1", 2) is None
    assert await store.usage.api_calls(DAY, ["u1"]) == {"u1": 2}  # a refusal counts nothing
    assert await store.usage.take_api_call(DAY, "u1", 3) == 3
    assert await store.usage.take_api_call(DAY, "u2", 0) is None
    assert await store.usage.api_calls(DAY, ["u2"]) == {"u2": 0}


async def test_two_store_instances_share_the_count_and_the_last_call(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    await asyncio.gather(*(s.usage.add_api_calls(DAY, {"u1": 1}) for s in (a, b) * 10))
    assert await b.usage.api_calls(DAY, ["u1"]) == {"u1": 20}
    taken = await asyncio.gather(*(s.usage.take_api_call(DAY, "u1", 25) for s in (a, b) * 5))
    assert sorted(t for t in taken if t is not None) == [21, 22, 23, 24, 25]
    assert taken.count(None) == 5


async def test_counts_survive_a_reopen(backend: Backend) -> None:
    first = await backend.open()
    await first.usage.add_api_calls(DAY, {"u1": 7})
    await first.close()
    again = await backend.open()
    assert await again.usage.api_calls(DAY, ["u1"]) == {"u1": 7}


async def test_days_before_the_cutoff_are_purged(store: Store) -> None:
    for day in ("2024-01-18", "2024-01-19", DAY):
        await store.usage.add_api_calls(day, {"u1": 1, "u2": 1})
    assert await store.usage.purge_api_calls("2024-01-19") == 2
    assert await store.usage.api_calls("2024-01-18", ["u1"]) == {"u1": 0}
    assert await store.usage.api_calls("2024-01-19", ["u1"]) == {"u1": 1}
    assert await store.usage.purge_api_calls("2024-01-19") == 0
