"""A GTD order whose time passed while the daemon was down expires when the paper broker
starts again: stored, then announced, before any tick of its symbol arrives (a quiet
market must not keep a dead order working, and fill it at its first tick)."""

from __future__ import annotations

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


def paper(spy: SpyStore, now: dict[str, float]) -> PaperBroker:
    return PaperBroker(
        DEFAULT_SYMBOLS,
        spy,  # type: ignore[arg-type]
        settings=PaperSettings(),
        is_open=lambda symbol, ts: True,
        clock=lambda: now["t"],
        revalue_interval=3600,
    )


async def test_an_order_that_expired_while_down_expires_at_start(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state" / "fxgate.sqlite3")
    await store.open()
    spy = SpyStore(store.trading)
    now = {"t": T0}
    first = paper(spy, now)
    await first.start()
    first.on_quote(Quote("EURUSD", 1.0849, 1.085, 1.0849, 1, 0, T0, 1, 1, 1, 1, 0.0, 0.0))
    request = OrderRequest(
        "EURUSD",
        OrderType.LIMIT,
        Side.BUY,
        D("1"),
        price=D("1.08000"),
        time_in_force=TimeInForce.GTD,
        expires_at=datetime.fromtimestamp(T0 + 60, UTC),
    )
    order = await first.place_order("alice", request)
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
