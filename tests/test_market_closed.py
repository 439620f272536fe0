"""``market_hours = "forex"``: weekend orders are refused, with the clock injected."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fxgate.brokers.paper.engine import PaperEngine
from fxgate.brokers.paper.hours import make_hours
from fxgate.domain.errors import ErrorCode, MarketClosedError
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.domain.trading import OrderRequest, OrderStatus, OrderType, Side

SATURDAY = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()
SUNDAY_EVENING = datetime(2026, 11, 22, 22, 30, tzinfo=UTC).timestamp()


def quote(ts: float) -> Quote:
    return Quote("EURUSD", 1.085, 1.0851, 1.085, 1, 10, ts, 1.08, 1.09, 1.08, 1.08, 0.005, 0.46)


def test_the_forex_session_refuses_weekend_orders_and_takes_them_after_the_open() -> None:
    now = [SATURDAY]
    tickets = iter(range(1, 1000))
    engine = PaperEngine(
        DEFAULT_SYMBOLS,
        clock=lambda: now[0],
        next_ticket=lambda: next(tickets),
        is_open=make_hours("forex").is_open,
    )
    engine.open_account("ann")
    engine.on_quote(quote(SATURDAY - 86400))  # Friday's last price
    buy = OrderRequest("EURUSD", OrderType.MARKET, Side.BUY, Decimal("0.1"))
    with pytest.raises(MarketClosedError) as info:
        engine.place_order("ann", buy)
    assert info.value.code is ErrorCode.MARKET_CLOSED_ERROR
    assert engine.positions("ann") == []

    now[0] = SUNDAY_EVENING
    engine.on_quote(quote(SUNDAY_EVENING))
    result = engine.place_order("ann", buy)
    assert result.orders[-1].status is OrderStatus.FILLED
    assert len(engine.positions("ann")) == 1
