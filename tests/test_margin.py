"""MT5's margin and profit arithmetic, checked to the cent against values worked by hand.

Every expected value is computed in the comment beside it from the MQL5 formulas
(``ENUM_SYMBOL_CALC_MODE``): Forex margin = lots * contract / leverage in the base
currency, CFD-leverage margin = lots * contract * price / leverage, profit =
(close - open) * contract * lots in the quote currency; conversions as documented in
``fxgate.brokers.paper.margin``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import pytest

from fxgate.brokers.paper import margin as m
from fxgate.brokers.paper.engine import PaperEngine
from fxgate.brokers.paper.margin import BidAsk
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.domain.errors import TradingError
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote, SymbolSpec
from fxgate.domain.money import round_money
from fxgate.domain.trading import OrderRequest, OrderType, Side

SPECS = {s.symbol: s for s in DEFAULT_SYMBOLS}
EURUSD, USDJPY, XAUUSD = SPECS["EURUSD"], SPECS["USDJPY"], SPECS["XAUUSD"]
EURGBP, EURJPY = SPECS["EURGBP"], SPECS["EURJPY"]

RATES = {
    "EURUSD": BidAsk(D("1.08490"), D("1.08500")),
    "USDJPY": BidAsk(D("149.000"), D("149.020")),
    "GBPUSD": BidAsk(D("1.27000"), D("1.27014")),
    "XAUUSD": BidAsk(D("2029.75"), D("2030.00")),
}


def test_eurusd_buy_margin_is_base_currency_converted_at_the_ask() -> None:
    # 1 * 100000 / 100 = 1000 EUR; * EURUSD ask 1.08500 = 1085.00 USD
    got = m.required_margin(EURUSD, Side.BUY, D(1), D("1.08500"), 100, "USD", RATES)
    assert got == D("1085.00")


def test_eurusd_sell_margin_is_converted_at_the_bid() -> None:
    # 1000 EUR * EURUSD bid 1.08490 = 1084.90 USD
    got = m.required_margin(EURUSD, Side.SELL, D(1), D("1.08490"), 100, "USD", RATES)
    assert got == D("1084.90")


def test_margin_scales_with_volume_and_leverage() -> None:
    # 0.25 * 100000 / 500 = 50 EUR; * 1.08500 = 54.25 USD
    got = m.required_margin(EURUSD, Side.BUY, D("0.25"), D("1.08500"), 500, "USD", RATES)
    assert got == D("54.25")


def test_usdjpy_margin_needs_no_conversion_on_a_usd_account() -> None:
    # 1 * 100000 / 100 = 1000 USD, already the deposit currency
    got = m.required_margin(USDJPY, Side.BUY, D(1), D("149.020"), 100, "USD", RATES)
    assert got == D("1000.00")


def test_xauusd_margin_uses_the_price_cfd_leverage_mode() -> None:
    # 1 * 100 oz * 2030.00 / 100 = 2030.00 USD
    got = m.required_margin(XAUUSD, Side.BUY, D(1), D("2030.00"), 100, "USD", RATES)
    assert got == D("2030.00")


def test_cross_margin_converts_the_base_through_its_usd_pair() -> None:
    # EURGBP: 1000 EUR; EUR -> USD via EURUSD ask 1.08500 = 1085.00 USD
    got = m.required_margin(EURGBP, Side.BUY, D(1), D("0.85500"), 100, "USD", RATES)
    assert got == D("1085.00")


def test_eurusd_profit_of_twenty_pips_on_one_lot() -> None:
    # (1.08700 - 1.08500) * 100000 * 1 = 200.00 USD
    got = m.profit(EURUSD, Side.BUY, D(1), D("1.08500"), D("1.08700"), "USD", RATES)
    assert got == D("200.00")


def test_sell_profit_has_the_opposite_sign() -> None:
    # -(1.08700 - 1.08500) * 100000 * 0.1 = -20.00 USD
    got = m.profit(EURUSD, Side.SELL, D("0.1"), D("1.08500"), D("1.08700"), "USD", RATES)
    assert got == D("-20.00")


def test_usdjpy_profit_is_divided_by_the_bid_when_positive() -> None:
    # (149.000 - 148.500) * 100000 = 50000 JPY; / USDJPY bid 149.000 = 335.5704... = 335.57
    got = m.profit(USDJPY, Side.BUY, D(1), D("148.500"), D("149.000"), "USD", RATES)
    assert got == D("335.57")


def test_usdjpy_loss_is_divided_by_the_ask() -> None:
    # sell 148.520 -> 149.020: -0.5 * 100000 = -50000 JPY; / ask 149.020 = -335.5254 = -335.53
    got = m.profit(USDJPY, Side.SELL, D(1), D("148.520"), D("149.020"), "USD", RATES)
    assert got == D("-335.53")


def test_xauusd_one_dollar_move_on_one_lot_is_a_hundred_dollars() -> None:
    # (2031.00 - 2030.00) * 100 oz * 1 = 100.00 USD
    got = m.profit(XAUUSD, Side.BUY, D(1), D("2030.00"), D("2031.00"), "USD", RATES)
    assert got == D("100.00")


def test_eurgbp_profit_converts_gbp_through_gbpusd() -> None:
    # (0.85600 - 0.85500) * 100000 = 100 GBP; * GBPUSD bid 1.27000 = 127.00 USD
    assert m.profit(EURGBP, Side.BUY, D(1), D("0.85500"), D("0.85600"), "USD", RATES) == D("127.00")
    # a loss of 100 GBP * GBPUSD ask 1.27014 = -127.014 = -127.01 USD
    assert m.profit(EURGBP, Side.BUY, D(1), D("0.85600"), D("0.85500"), "USD", RATES) == D(
        "-127.01"
    )


def test_eurjpy_profit_converts_jpy_through_usdjpy() -> None:
    # (161.500 - 161.000) * 100000 = 50000 JPY; / USDJPY bid 149.000 = 335.57 USD
    got = m.profit(EURJPY, Side.BUY, D(1), D("161.000"), D("161.500"), "USD", RATES)
    assert got == D("335.57")


def test_a_jpy_account_rounds_to_whole_yen() -> None:
    # EURUSD +200 USD; USD -> JPY: multiply by USDJPY bid 149.000 = 29800 JPY
    got = m.profit(EURUSD, Side.BUY, D(1), D("1.08500"), D("1.08700"), "JPY", RATES)
    assert got == D("29800")
    # margin of 0.01 lot: 0.01 * 100000 / 100 = 10 EUR, through USD (no EURJPY rate here):
    # 10 * EURUSD ask 1.08500 = 10.85 USD; * USDJPY ask 149.020 = 1616.867 = 1617 JPY
    assert m.required_margin(EURUSD, Side.BUY, D("0.01"), D("1.085"), 100, "JPY", RATES) == D(
        "1617"
    )


def test_conversion_goes_direct_inverted_or_through_usd() -> None:
    assert m.conversion_path("USD", "USD", RATES) == ()
    assert m.conversion_path("EUR", "USD", RATES) == (("EURUSD", False),)
    assert m.conversion_path("JPY", "USD", RATES) == (("USDJPY", True),)
    assert m.conversion_path("GBP", "JPY", RATES) == (("GBPUSD", False), ("USDJPY", False))
    assert m.conversion_path("CHF", "USD", RATES) is None


def test_a_missing_rate_is_a_trading_error() -> None:
    chf = SPECS["USDCHF"]
    with pytest.raises(TradingError):
        m.profit(chf, Side.BUY, D(1), D("0.88000"), D("0.88100"), "USD", RATES)


def test_rates_may_be_quotes_or_pairs() -> None:
    quote = Quote("EURUSD", 1.0849, 1.085, 1.0849, 0, 10, 0.0, 1.08, 1.09, 1.08, 1.08, 0.0, 0.0)
    as_quote = {"EURUSD": quote}
    as_pair = {"EURUSD": (D("1.08490"), D("1.08500"))}
    for rates in (as_quote, as_pair):
        got = m.required_margin(EURUSD, Side.BUY, D(1), D("1.085"), 100, "USD", rates)
        assert got == D("1085.00")


def test_equity_free_margin_and_margin_level() -> None:
    equity = m.equity(D("10000.00"), D("200.00"))  # 10200.00
    assert equity == D("10200.00")
    assert m.free_margin(equity, D("1085.00")) == D("9115.00")
    # 10200 / 1085 * 100 = 940.0921... = 940.09 %
    assert m.margin_level(equity, D("1085.00")) == D("940.09")
    assert m.margin_level(equity, D("0.00")) is None


def test_money_rounds_half_away_from_zero_like_mt5() -> None:
    assert round_money(D("0.005"), "USD") == D("0.01")
    assert round_money(D("-0.005"), "USD") == D("-0.01")
    assert round_money(D("2.5"), "JPY") == D("3")


# -- hedged margin and margin at current rates (the engine) -----------------------------
#
# MT5 charges the overlapped volume of opposite positions on one symbol at the symbol's
# hedged margin, and recomputes the margin of open positions at current rates; before
# issue 6 both legs were charged in full and a position kept its opening margin.


def _engine(specs: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS, **settings: Any) -> PaperEngine:
    tickets = itertools.count(1000)
    engine = PaperEngine(
        specs, PaperSettings(**settings), clock=lambda: 1_700_000_000.0,
        next_ticket=lambda: next(tickets),
    )  # fmt: skip
    engine.open_account("alice")
    return engine


def _tick(engine: PaperEngine, symbol: str, bid: str, ask: str) -> None:
    b, a = float(bid), float(ask)
    engine.on_quote(Quote(symbol, b, a, b, 1, 0, 0.0, b, b, b, b, 0.0, 0.0))


def _deal(engine: PaperEngine, side: Side, volume: str, symbol: str = "EURUSD") -> None:
    engine.place_order("alice", OrderRequest(symbol, OrderType.MARKET, side, D(volume)))


def test_a_full_hedge_costs_the_margin_of_its_larger_leg() -> None:
    engine = _engine()
    _tick(engine, "EURUSD", "1.10010", "1.10020")
    _deal(engine, Side.BUY, "1")  # 1000 EUR * ask 1.10020 = 1100.20
    _deal(engine, Side.SELL, "1")  # 1000 EUR * bid 1.10010 = 1100.10
    # MT5 with "calculate using larger leg": max(1100.20, 1100.10), not their sum 2200.30
    assert engine.account("alice").margin == D("1100.20")


def test_hedged_volume_is_charged_at_margin_hedged_when_not_using_the_larger_leg() -> None:
    spec = replace(EURUSD, margin_hedged=D(50_000), margin_hedged_use_leg=False)
    engine = _engine((spec,))
    _tick(engine, "EURUSD", "1.10010", "1.10020")
    _deal(engine, Side.BUY, "1")  # 1100.20
    _deal(engine, Side.SELL, "0.4")  # 400 EUR * 1.10010 = 440.04
    # 0.4 lot hedged per leg at 50,000 of 100,000 (k = 0.5):
    # buy 1100.20 * (0.6 + 0.5 * 0.4) / 1 = 880.16; sell 440.04 * (0.5 * 0.4) / 0.4 = 220.02
    assert engine.account("alice").margin == D("1100.18")


def test_an_order_that_hedges_needs_no_more_free_margin() -> None:
    engine = _engine(initial_balance=D(1200))
    _tick(engine, "EURUSD", "1.10010", "1.10020")
    _deal(engine, Side.BUY, "1")  # margin 1100.20; free 1200 - 10 - 1100.20 = 89.80
    _deal(engine, Side.SELL, "1")  # the larger leg stays 1100.20: nothing more to cover
    acc = engine.account("alice")
    assert (len(engine.positions("alice")), acc.margin) == (2, D("1100.20"))


def test_a_position_s_margin_follows_the_current_rate() -> None:
    engine = _engine()
    _tick(engine, "EURUSD", "1.08490", "1.08500")
    _deal(engine, Side.BUY, "0.1")  # 100 EUR * 1.08500 = 108.50
    assert engine.account("alice").margin == D("108.50")
    _tick(engine, "EURUSD", "1.09990", "1.10000")  # 100 EUR * 1.10000 = 110.00
    (pos,) = engine.positions("alice")
    assert (pos.margin, engine.account("alice").margin) == (D("110.00"), D("110.00"))


def test_margin_follows_the_cross_rate_on_a_non_usd_account() -> None:
    engine = _engine(currency="CHF")
    _tick(engine, "EURUSD", "1.08490", "1.08500")
    _tick(engine, "USDCHF", "0.88000", "0.88015")
    _deal(engine, Side.BUY, "0.1")
    # 100 EUR -> USD at EURUSD ask 1.08500 -> CHF at USDCHF ask 0.88015 = 95.496... = 95.50
    assert engine.account("alice").margin == D("95.50")
    _tick(engine, "USDCHF", "0.89000", "0.89015")  # only the conversion pair moves
    # 100 * 1.08500 * 0.89015 = 96.581... = 96.58 CHF
    assert engine.account("alice").margin == D("96.58")
