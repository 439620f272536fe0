"""The trading area: the broker's records per user, idempotency, restore at startup,
ticket counters and risk alerts."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from fxgate.domain.trading import (
    Order,
    OrderReason,
    OrderStatus,
    OrderType,
    PositionStatus,
    Side,
    TimeInForce,
)
from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import OwnedDoc
from fxgate.store.mongodb import MongoStore
from tests.store.builders import T0, account, at, deal, order, position
from tests.store.conftest import Backend

FILLED, PENDING = OrderStatus.FILLED, OrderStatus.PENDING


async def test_orders_are_saved_and_read_back_per_user(store: Store) -> None:
    await store.trading.save(orders=[order("o1", client_order_id="c1", ticket=7)])
    saved = await store.trading.get_order("u1", "o1")
    assert saved == order("o1", client_order_id="c1", ticket=7)
    assert await store.trading.get_order("u2", "o1") is None  # never another user's order
    assert await store.trading.get_order_by_client_id("u1", "c1") == saved
    assert await store.trading.get_order_by_client_id("u2", "c1") is None


async def test_a_record_reads_back_equal_with_every_field(store: Store) -> None:
    full = Order(
        id="o9",
        ticket=9,
        user_id="u1",
        symbol="XAUUSD",
        type=OrderType.STOP_LIMIT,
        side=Side.SELL,
        volume=Decimal("1.50"),
        created_at=at(1),
        updated_at=at(2),
        price=Decimal("2300.10"),
        stop_price=Decimal("2301.00"),
        stop_loss=Decimal("2310.5"),
        take_profit=Decimal("2250"),
        time_in_force=TimeInForce.IOC,
        status=OrderStatus.CANCELLED,
        filled_volume=Decimal("0.50"),
        average_price=Decimal("2300.05"),
        client_order_id="c9",
        strategy_id="s1",
        connection_id="conn",
        comment="ünïcode",
        cancelled_at=at(3),
        triggered_at=at(2.5),
        reject_reason=None,
        position_ticket=9,
        reason=OrderReason.STOP_LOSS,
    )
    await store.trading.save(orders=[full])
    back = await store.trading.get_order("u1", "o9")
    assert back == full
    assert back is not None
    assert str(back.filled_volume) == "0.50"  # Decimal digits survive, not a float


async def test_client_order_id_is_unique_per_user_only(store: Store) -> None:
    await store.trading.save(
        orders=[
            order("o1", "u1", client_order_id="same"),
            order("o2", "u2", client_order_id="same"),  # another user may use it too
            order("o3", "u1"),
            order("o4", "u1"),  # many orders without one
        ]
    )
    with pytest.raises(StoreConflictError, match="clientOrderId"):
        await store.trading.save(orders=[order("o5", "u1", client_order_id="same")])
    assert await store.trading.get_order("u1", "o5") is None
    # Updating the order that owns the client id is not a conflict.
    await store.trading.save(orders=[order("o1", "u1", client_order_id="same", status=FILLED)])
    again = await store.trading.get_order_by_client_id("u1", "same")
    assert again is not None
    assert again.status is FILLED


async def test_a_failing_batch_writes_nothing_where_the_backend_is_atomic(
    backend: Backend, store: Store
) -> None:
    await store.trading.save(orders=[order("o1", client_order_id="c1")])
    with pytest.raises(StoreConflictError):
        await store.trading.save(
            orders=[order("o2"), order("o3", client_order_id="c1")],  # o3 conflicts
            positions=[position(10)],
            accounts=[account("u1", "9000.00")],
        )
    atomic = backend.is_sqlite or (isinstance(store, MongoStore) and store.supports_transactions)
    if atomic:
        assert await store.trading.get_order("u1", "o2") is None
    else:  # documented: ordered upserts keep what preceded the failure
        assert await store.trading.get_order("u1", "o2") is not None
    assert await store.trading.list_positions("u1") == []
    assert await store.trading.list_accounts() == []


async def test_a_malformed_batch_writes_nothing(store: Store) -> None:
    bad_position = dataclasses.replace(position(11), ticket="11")  # a str ticket
    with pytest.raises(ValueError, match="ticket"):
        await store.trading.save(orders=[order("o1")], positions=[bad_position])
    with pytest.raises(ValueError, match="user_id"):
        await store.trading.save(orders=[order("o2")], accounts=[account("")])
    with pytest.raises(ValueError, match="id"):
        await store.trading.save(orders=[order("")])
    assert (await store.trading.list_orders("u1"))[1] == 0


async def test_list_orders_pages_newest_first_with_a_total(store: Store) -> None:
    await store.trading.save(
        orders=[order(f"o{i}", minutes=i, status=FILLED if i % 2 else PENDING) for i in range(7)]
        + [order("x1", "u2")]
    )
    page, total = await store.trading.list_orders("u1", limit=3)
    assert total == 7
    assert [o.id for o in page] == ["o6", "o5", "o4"]
    last, total = await store.trading.list_orders("u1", offset=6, limit=3)
    assert [o.id for o in last] == ["o0"]
    assert total == 7
    beyond, total = await store.trading.list_orders("u1", offset=10)
    assert (beyond, total) == ([], 7)
    filled, total = await store.trading.list_orders("u1", status="filled")
    assert total == 3
    assert {o.status for o in filled} == {FILLED}
    window, total = await store.trading.list_orders(
        "u1", start=T0 + timedelta(minutes=2), end=T0 + timedelta(minutes=5)
    )
    assert [o.id for o in window] == ["o4", "o3", "o2"]
    assert total == 3
    none, total = await store.trading.list_orders("u1", symbol="GBPUSD")
    assert (none, total) == ([], 0)
    counted, total = await store.trading.list_orders("u1", limit=0)
    assert (counted, total) == ([], 7)
    with pytest.raises(ValueError):
        await store.trading.list_orders("u1", offset=-1)


async def test_pending_orders_of_everyone_are_restored(store: Store) -> None:
    await store.trading.save(
        orders=[
            order("a", "u1"),
            order("b", "u2", minutes=1),
            order("c", "u2", status=FILLED),
            order("d", "u3", status=OrderStatus.REJECTED, minutes=2),
        ]
    )
    assert [o.id for o in await store.trading.list_pending_orders()] == ["a", "b"]
    both = await store.trading.list_pending_orders(["pending", "rejected"])
    assert [o.id for o in both] == ["a", "b", "d"]
    assert await store.trading.list_pending_orders([]) == []


async def test_positions_open_close_and_restore(store: Store) -> None:
    closed = PositionStatus.CLOSED
    await store.trading.save(
        positions=[position(3), position(1), position(2, "u2"), position(4, status=closed)]
    )
    assert [p.ticket for p in await store.trading.list_positions("u1")] == [1, 3, 4]
    assert [p.ticket for p in await store.trading.list_positions("u1", "open")] == [1, 3]
    assert [p.ticket for p in await store.trading.list_open_positions()] == [1, 2, 3]
    await store.trading.save(positions=[position(1, status=closed)])
    assert [p.ticket for p in await store.trading.list_open_positions()] == [2, 3]
    assert await store.trading.list_positions("u1", "closed") == [
        position(1, status=closed),
        position(4, status=closed),
    ]


async def test_deals_page_by_time(store: Store) -> None:
    await store.trading.save(deals=[deal(100 + i, minutes=i) for i in range(5)] + [deal(9, "u2")])
    page, total = await store.trading.list_deals("u1", limit=2)
    assert total == 5
    assert [d.ticket for d in page] == [104, 103]
    window, total = await store.trading.list_deals(
        "u1", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3), 1, 10
    )
    assert total == 2
    assert [d.ticket for d in window] == [101]
    assert (await store.trading.list_deals("u1", symbol="GBPUSD"))[1] == 0
    assert page[0] == deal(104, minutes=4)


async def test_accounts_are_one_per_user(store: Store) -> None:
    await store.trading.save(accounts=[account("u2")])
    await store.trading.save(accounts=[account("u1", "5.00"), account("u2", "9.50")])
    accounts = await store.trading.list_accounts()
    assert [a.user_id for a in accounts] == ["u1", "u2"]
    assert accounts[1] == account("u2", "9.50")


async def test_sequences_count_up_without_repeats(store: Store) -> None:
    assert [await store.trading.next_sequence("ticket") for _ in range(3)] == [1, 2, 3]
    assert await store.trading.next_sequence("order") == 1
    values = await asyncio.gather(*(store.trading.next_sequence("ticket") for _ in range(10)))
    assert sorted(values) == list(range(4, 14))


async def test_alerts_belong_to_their_owner(store: Store) -> None:
    await store.trading.save_alert("u1", "a1", {"symbol": "EURUSD", "above": "1.10"})
    await store.trading.save_alert("u1", "a2", {"symbol": "GBPUSD", "below": "1.20"})
    await store.trading.save_alert("u2", "b1", {"symbol": "USDJPY"})
    await store.trading.save_alert("u1", "a1", {"symbol": "EURUSD", "above": "1.11"})  # update
    with pytest.raises(StoreConflictError):
        await store.trading.save_alert("u2", "a1", {"stolen": True})
    everyone = await store.trading.list_all_alerts()
    assert [(a.user_id, a.id) for a in everyone] == [("u1", "a1"), ("u1", "a2"), ("u2", "b1")]
    assert everyone[0] == OwnedDoc("a1", "u1", {"symbol": "EURUSD", "above": "1.11"})
