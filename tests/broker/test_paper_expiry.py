"""The paper broker's clock expires GTD orders, not only its symbols' ticks: an order on a
quiet symbol expires on time, and one whose time passed while the daemon was down expires
when the broker starts again; stored, then announced, before any tick of its symbol
(a quiet market must not keep a dead order working, and fill it at its first tick)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

from fxgate.brokers.paper.broker import PaperBroker
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.domain.trading import Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from fxgate.services.ports.broker import BrokerEvent
from fxgate.store.sqlite import SQLiteStore
from tests.broker.conftest import T0, SpyStore


def paper(spy: SpyStore, now: dict[str, float], interval: float = 3600) -> PaperBroker:
    return PaperBroker(
        DEFAULT_SYMBOLS,
        spy,  # type: ignore[arg-type]
        settings=PaperSettings(),
        is_open=lambda symbol, ts: True,
        clock=lambda: now["t"],
        revalue_interval=interval,
    )


def gtd(expires: float) -> OrderRequest:
    return OrderRequest(
        "EURUSD",
        OrderType.LIMIT,
        Side.BUY,
        D("1"),
        price=D("1.08000"),
        time_in_force=TimeInForce.GTD,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


QUOTE = Quote("EURUSD", 1.0849, 1.085, 1.0849, 1, 0, T0, 1, 1, 1, 1, 0.0, 0.0)


async def test_an_order_on_a_quiet_symbol_expires_at_the_clocks_tick(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state" / "fxgate.sqlite3")
    await store.open()
    spy = SpyStore(store.trading)
    now = {"t": T0}
    broker = paper(spy, now, interval=0.01)
    seen: asyncio.Queue[Order] = asyncio.Queue()
    broker.subscribe(lambda e: seen.put_nowait(e.data) if isinstance(e.data, Order) else None)
    await broker.start()
    try:
        broker.on_quote(QUOTE)
        order = await broker.place_order("alice", gtd(T0 + 60))
        assert (await asyncio.wait_for(seen.get(), 5)).status is OrderStatus.PENDING
        now["t"] = T0 + 61  # no tick of EURUSD comes
        expired = await asyncio.wait_for(seen.get(), 5)
        assert (expired.id, expired.status) == (order.id, OrderStatus.EXPIRED)
        assert expired in spy.saved
        assert await broker.orders("alice") == []
    finally:
        await broker.stop()
        await store.close()


async def test_an_order_that_expired_while_down_expires_at_start(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state" / "fxgate.sqlite3")
    await store.open()
    spy = SpyStore(store.trading)
    now = {"t": T0}
    first = paper(spy, now)
    await first.start()
    first.on_quote(QUOTE)
    order = await first.place_order("alice", gtd(T0 + 60))
    await first.stop()

    now["t"] = T0 + 3600  # down for an hour
    second = paper(spy, now)
    events: list[BrokerEvent] = []
    stored_first: list[bool] = []

    def listen(event: BrokerEvent) -> None:
        events.append(event)
        stored_first.append(event.data in spy.saved)

    second.subscribe(listen)
    await second.start()
    try:
        await second.flush()
        assert await second.orders("alice") == []
        expired = [e.data for e in events if isinstance(e.data, Order)]
        assert [(o.id, o.status) for o in expired] == [(order.id, OrderStatus.EXPIRED)]
        assert all(stored_first)
        (saved,), _ = await store.trading.list_orders("alice", status="expired")
        assert (saved.id, saved.expires_at) == (order.id, T0 + 60)
    finally:
        await second.stop()
        await store.close()
