"""Crypto CFDs on the paper market (seed 004's ``BTC/USD``): open around the clock even
under ``market_hours = "forex"``, margined in MT5's CFD mode, one coin per lot."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fxgate.brokers.paper.engine import PaperEngine
from fxgate.brokers.paper.feed import MarketSimulator
from fxgate.brokers.paper.hours import make_hours
from fxgate.brokers.paper.margin import CalcMode, calc_mode, required_margin
from fxgate.domain.errors import MarketClosedError
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.domain.trading import OrderRequest, OrderStatus, OrderType, Side

SPECS = {s.symbol: s for s in DEFAULT_SYMBOLS}
SATURDAY = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()


def btc(ts: float) -> Quote:
    return Quote("BTCUSD", 95000.0, 95035.0, 95000.0, 3, 3500, ts, 94000.0, 96000.0, 93000.0,
                 94500.0, 500.0, 0.5291)  # fmt: skip


def eur(ts: float) -> Quote:
    return Quote("EURUSD", 1.085, 1.0851, 1.085, 1, 10, ts, 1.08, 1.09, 1.08, 1.08, 0.005, 0.46)


def test_crypto_specs_are_realistic_cfds() -> None:
    for name, low, high in (("BTCUSD", 10_000, 500_000), ("ETHUSD", 300, 30_000)):
        spec = SPECS[name]
        assert spec.kind == "crypto"
        assert spec.quote == "USD"
        assert spec.digits == 2
        assert spec.contract_size == 1
        assert low < spec.start_price < high
        # a spread of a few hundredths of a percent, as retail CFD brokers quote
        assert (
            0.0001
            < spec.typical_spread_points * float(spec.point) / float(spec.start_price)
            < 0.002
        )
        assert calc_mode(spec) is CalcMode.CFD
        assert spec.trading_hours == "24x7"


def test_cfd_margin_is_price_times_contract_times_rate_without_leverage() -> None:
    spec = SPECS["BTCUSD"]
    rates = {"BTCUSD": (Decimal("95000"), Decimal("95035"))}
    for leverage in (1, 100, 500):
        margin = required_margin(spec, Side.BUY, Decimal("0.1"), Decimal("95035"), leverage,
                                 "USD", rates)  # fmt: skip
        assert margin == Decimal("1900.70")  # 0.1 * 1 * 95035 * 0.2, whatever the leverage


def test_crypto_trades_at_the_weekend_when_forex_is_closed() -> None:
    tickets = iter(range(1, 1000))
    engine = PaperEngine(
        DEFAULT_SYMBOLS,
        clock=lambda: SATURDAY,
        next_ticket=lambda: next(tickets),
        is_open=make_hours("forex", DEFAULT_SYMBOLS).is_open,
    )
    engine.open_account("ann")
    engine.on_quote(eur(SATURDAY - 86400))
    engine.on_quote(btc(SATURDAY))
    with pytest.raises(MarketClosedError):
        engine.place_order(
            "ann", OrderRequest("EURUSD", OrderType.MARKET, Side.BUY, Decimal("0.1"))
        )
    result = engine.place_order(
        "ann", OrderRequest("BTCUSD", OrderType.MARKET, Side.BUY, Decimal("0.05"))
    )
    assert result.orders[-1].status is OrderStatus.FILLED
    [position] = engine.positions("ann")
    assert position.symbol == "BTCUSD"
    assert position.open_price == Decimal("95035.00")


def test_the_feed_ticks_crypto_through_the_weekend_and_forex_not() -> None:
    hours = make_hours("forex", DEFAULT_SYMBOLS)
    sim = MarketSimulator(DEFAULT_SYMBOLS, seed=4, hours=hours, clock=lambda: SATURDAY)
    ticks = sim.step(SATURDAY + 600)
    symbols = {q.symbol for q in ticks}
    assert {"BTCUSD", "ETHUSD"} <= symbols
    assert not symbols - {"BTCUSD", "ETHUSD"}
