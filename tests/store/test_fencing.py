"""The trading area's fence: every trading write of a cluster's leader carries its fencing
token, and the store refuses, with the write, a token lower than the highest it has
seen. Without a token (one node) nothing is fenced."""

from __future__ import annotations

import asyncio

import pytest

from fxgate.domain.trading import Order
from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StaleFenceError, StoreFencedError
from tests.store.builders import account, order, position
from tests.store.conftest import Backend


async def test_a_write_with_a_lower_token_than_seen_is_refused_and_writes_nothing(
    store: Store,
) -> None:
    await store.trading.save(orders=[order("o1")], fence=3)
    await store.trading.save(orders=[order("o2")], fence=3)  # the same term writes on
    await store.trading.save(orders=[order("o3")], fence=4)  # a newer leader
    with pytest.raises(StaleFenceError) as refused:
        await store.trading.save(
            orders=[order("o4")], positions=[position(9)], accounts=[account("u1")], fence=3
        )
    assert isinstance(refused.value, StoreFencedError), "the broker's lost-leadership path"
    orders, total = await store.trading.list_orders("u1")
    assert sorted(o.id for o in orders) == ["o1", "o2", "o3"]
    assert total == 3
    assert await store.trading.list_positions("u1") == []
    assert await store.trading.list_accounts() == []
    await store.trading.save(orders=[order("o5")], fence=4)


async def test_ticket_counters_and_alerts_are_fenced_too(store: Store) -> None:
    assert await store.trading.next_sequence("ticket", fence=2) == 1
    await store.trading.save_alert("u1", "a1", {"symbol": "EURUSD"}, fence=2)
    assert await store.trading.next_sequence("ticket", fence=5) == 2
    with pytest.raises(StaleFenceError):
        await store.trading.next_sequence("ticket", fence=2)
    with pytest.raises(StaleFenceError):
        await store.trading.save_alert("u1", "a2", {"symbol": "GBPUSD"}, fence=2)
    assert await store.trading.next_sequence("ticket", fence=5) == 3, "the refused one took none"
    alerts = await store.trading.list_all_alerts()
    assert [a.id for a in alerts] == ["a1"]


async def test_writes_without_a_token_are_not_fenced(store: Store) -> None:
    """One node (no cluster) passes no token: nothing it writes is refused."""
    await store.trading.save(orders=[order("o1")])
    await store.trading.save(orders=[order("o2")], fence=7)
    await store.trading.save(orders=[order("o3")])
    assert await store.trading.next_sequence("ticket") == 1
    await store.trading.save_alert("u1", "a1", {"symbol": "EURUSD"})
    _, total = await store.trading.list_orders("u1")
    assert total == 3


async def test_two_leaders_on_one_database_only_the_newer_writes(backend: Backend) -> None:
    """Two nodes over the one shared store: once the new leader has written, the old one
    is refused, however its writes interleave, and the mark survives a reopen."""

    def mine(order_id: str) -> Order:
        # Distinct clientOrderIds: mongomock's unique index ignores its partial filter
        # when it is built again on reopen.
        return order(order_id, client_order_id=order_id)

    old, new = await backend.open(), await backend.open()
    await old.trading.save(orders=[mine("old-1")], fence=1)
    results = await asyncio.gather(
        new.trading.save(orders=[mine("new-1")], fence=2),
        *(old.trading.save(orders=[mine(f"old-{i}")], fence=1) for i in range(2, 6)),
        return_exceptions=True,
    )
    assert results[0] is None
    stored = {o.id for o in (await new.trading.list_orders("u1", limit=100))[0]}
    written = {f"old-{i}" for i, r in zip(range(2, 6), results[1:], strict=True) if r is None}
    refused = [r for r in results[1:] if r is not None]
    assert all(isinstance(r, StaleFenceError) for r in refused)
    assert stored == {"old-1", "new-1"} | written, "a refused write left nothing behind"
    with pytest.raises(StaleFenceError):
        await old.trading.save(orders=[mine("old-late")], fence=1)
    await old.close()
    reopened = await backend.open()
    with pytest.raises(StaleFenceError):
        await reopened.trading.save(orders=[mine("old-later")], fence=1)
    await reopened.trading.save(orders=[mine("new-2")], fence=2)
