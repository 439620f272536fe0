"""The paper broker's engine, told as a trader's day: orders in, prices move, money adds up.

Amounts are worked by hand in the comments (USD account, 1:100, contract 100000 for FX
and 100 oz for gold), so a wrong side, a wrong conversion or a lost cent fails a test.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal as D

import pytest

from fxgate.brokers.paper.engine import PaperEngine
from fxgate.brokers.paper.results import EngineResult
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.domain.errors import (
    InsufficientBalanceError,
    MarketClosedError,
    NotFoundError,
    TradingError,
    ValidationError,
)
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.domain.trading import (
    Account,
    AccountMode,
    DealEntry,
    Order,
    OrderChanges,
    OrderReason,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Side,
    TimeInForce,
)
from fxgate.services.presenters import order_book_payload
from fxgate.store.codecs import decode, encode

T0 = 1_700_000_000.0  # Tuesday 2023-11-14 22:13:20 UTC


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class Market:
    """An engine with a clock, a ticket counter, prices for the majors and Alice's account."""

    def __init__(self, **settings: object) -> None:
        self.clock = Clock()
        self.open = True
        self.tickets = itertools.count(1000)
        self.engine = PaperEngine(
            DEFAULT_SYMBOLS,
            PaperSettings(**settings),  # type: ignore[arg-type]
            clock=self.clock,
            next_ticket=lambda: next(self.tickets),
            is_open=lambda symbol, now: self.open,
        )
        self.tick("EURUSD", "1.08490", "1.08500")
        self.tick("GBPUSD", "1.27000", "1.27014")
        self.tick("USDJPY", "149.000", "149.020")
        self.tick("XAUUSD", "2029.75", "2030.00")
        self.tick("EURGBP", "0.85500", "0.85515")
        self.engine.open_account("alice")

    def tick(self, symbol: str, bid: str, ask: str) -> EngineResult:
        b, a = float(bid), float(ask)
        quote = Quote(symbol, b, a, b, 1, 0, self.clock.t, b, b, b, b, 0.0, 0.0)
        return self.engine.on_quote(quote)

    def order(self, side: Side, volume: str, symbol: str = "EURUSD", **kw: object) -> Order:
        request = OrderRequest(symbol=symbol, side=side, volume=D(volume), **kw)  # type: ignore[arg-type]
        result = self.engine.place_order("alice", request)
        assert isinstance(result.subject, Order)
        return result.subject

    def buy(self, volume: str, symbol: str = "EURUSD", **kw: object) -> Order:
        return self.order(Side.BUY, volume, symbol, type=kw.pop("type", OrderType.MARKET), **kw)

    def sell(self, volume: str, symbol: str = "EURUSD", **kw: object) -> Order:
        return self.order(Side.SELL, volume, symbol, type=kw.pop("type", OrderType.MARKET), **kw)

    @property
    def account(self) -> Account:
        return self.engine.account("alice")

    @property
    def positions(self) -> list[Position]:
        return self.engine.positions("alice")


@pytest.fixture
def mkt() -> Market:
    return Market()


# -- market orders and accounting ------------------------------------------------------


def test_market_buy_fills_at_the_ask_and_books_margin(mkt: Market) -> None:
    order = mkt.buy("1")
    assert order.status is OrderStatus.FILLED
    assert order.average_price == D("1.08500")  # the ask
    (pos,) = mkt.positions
    assert pos.ticket == order.ticket  # MT5 hedging: the position takes the order's ticket
    assert pos.side is Side.BUY
    assert pos.open_price == D("1.08500")
    assert pos.margin == D("1085.00")  # 1000 EUR * 1.08500
    # valued at the bid: (1.08490 - 1.08500) * 100000 = -10.00
    assert pos.profit == D("-10.00")
    acc = mkt.account
    assert (acc.balance, acc.equity, acc.margin) == (D("10000.00"), D("9990.00"), D("1085.00"))
    assert acc.free_margin == D("8905.00")
    # 9990 / 1085 * 100 = 920.737... = 920.74 %
    assert acc.margin_level == D("920.74")


def test_floating_profit_follows_the_bid(mkt: Market) -> None:
    mkt.buy("1")
    result = mkt.tick("EURUSD", "1.08700", "1.08710")
    # (1.08700 - 1.08500) * 100000 = 200.00
    (pos,) = [r for r in result.revalued if isinstance(r, Position)]
    assert pos.profit == D("200.00")
    assert pos.current_price == D("1.08700")
    (acc,) = [r for r in result.revalued if isinstance(r, Account)]
    assert acc.equity == D("10200.00")
    assert acc.balance == D("10000.00")
    assert result.changes == []  # a revaluation is not a trading change


def test_market_sell_fills_at_the_bid_and_is_valued_at_the_ask(mkt: Market) -> None:
    order = mkt.sell("1")
    assert order.average_price == D("1.08490")
    (pos,) = mkt.positions
    assert pos.current_price == D("1.08500")
    assert pos.profit == D("-10.00")  # (1.08490 - 1.08500) * 100000
    assert pos.margin == D("1084.90")  # 1000 EUR * bid 1.08490


def test_a_place_order_result_lists_order_deal_position_then_account(mkt: Market) -> None:
    result = mkt.engine.place_order(
        "alice", OrderRequest("EURUSD", OrderType.MARKET, Side.BUY, D("0.10"))
    )
    kinds = [type(c).__name__ for c in result.changes]
    assert kinds == ["Order", "Deal", "Position", "Account"]
    (deal,) = result.deals
    assert deal.entry is DealEntry.IN
    assert deal.position_ticket == result.orders[0].ticket
    assert deal.ticket != deal.order_ticket  # the deal's own ticket is the executionId


def test_usdjpy_and_gold_margins_and_profits(mkt: Market) -> None:
    mkt.buy("1", "USDJPY")
    mkt.buy("1", "XAUUSD")
    jpy, gold = mkt.positions
    assert jpy.margin == D("1000.00")  # 1 * 100000 / 100 USD
    assert gold.margin == D("2030.00")  # 1 * 100 * 2030.00 / 100
    mkt.tick("USDJPY", "149.520", "149.540")
    mkt.tick("XAUUSD", "2031.00", "2031.25")
    jpy, gold = mkt.positions
    # (149.520 - 149.020) * 100000 = 50000 JPY; / USDJPY bid 149.520 = 334.4034 = 334.40
    assert jpy.profit == D("334.40")
    # (2031.00 - 2030.00) * 100 = 100.00
    assert gold.profit == D("100.00")
    assert mkt.account.equity == D("10434.40")


def test_a_cross_is_revalued_when_its_conversion_pair_ticks(mkt: Market) -> None:
    mkt.buy("1", "EURGBP")  # at 0.85515
    mkt.tick("EURGBP", "0.85615", "0.85630")
    # (0.85615 - 0.85515) * 100000 = 100 GBP * GBPUSD bid 1.27000 = 127.00
    assert mkt.positions[0].profit == D("127.00")
    result = mkt.tick("GBPUSD", "1.28000", "1.28014")
    # the same 100 GBP now * 1.28000 = 128.00, without an EURGBP tick
    assert [p.profit for p in result.revalued if isinstance(p, Position)] == [D("128.00")]


def test_commission_is_charged_per_lot_at_every_deal() -> None:
    mkt = Market(commission_per_lot=D("7"))
    mkt.buy("1")
    assert mkt.account.balance == D("9993.00")  # 10000 - 7 * 1 lot
    mkt.tick("EURUSD", "1.08700", "1.08710")
    ticket = mkt.positions[0].ticket
    result = mkt.engine.close_position("alice", ticket)
    (out,) = result.deals
    assert (out.profit, out.commission) == (D("200.00"), D("-7.00"))
    closed = result.subject
    assert isinstance(closed, Position)
    assert closed.status is PositionStatus.CLOSED
    assert closed.commission == D("-14.00")
    assert closed.realized_pnl == D("186.00")  # 200 - 7 - 7
    assert mkt.account.balance == D("10186.00")
    assert mkt.account.realized_pnl == D("186.00")


def test_partial_close_keeps_the_ticket_and_releases_margin_pro_rata(mkt: Market) -> None:
    mkt.buy("1")
    mkt.tick("EURUSD", "1.08600", "1.08610")
    ticket = mkt.positions[0].ticket
    result = mkt.engine.close_position("alice", ticket, D("0.4"))
    (out,) = result.deals
    # 0.4 lot: (1.08600 - 1.08500) * 40000 = 40.00
    assert out.entry is DealEntry.OUT
    assert out.volume == D("0.4")
    assert out.profit == D("40.00")
    (pos,) = mkt.positions
    assert pos.ticket == ticket
    assert pos.volume == D("0.6")
    assert pos.margin == D("651.00")  # 1085.00 * 0.6
    assert pos.profit == D("60.00")  # the remaining 0.6 lot: 0.00100 * 60000
    assert mkt.account.balance == D("10040.00")
    (closing,) = result.orders
    assert closing.side is Side.SELL
    assert closing.position_ticket == ticket


def test_a_partial_close_must_leave_a_tradable_volume(mkt: Market) -> None:
    mkt.buy("0.05")
    ticket = mkt.positions[0].ticket
    with pytest.raises(ValidationError):
        mkt.engine.close_position("alice", ticket, D("0.10"))  # more than open
    with pytest.raises(ValidationError):
        mkt.engine.close_position("alice", ticket, D("0.045"))  # off the 0.01 step
    mkt.engine.close_position("alice", ticket, D("0.04"))
    assert mkt.positions[0].volume == D("0.01")


# -- pending orders --------------------------------------------------------------------


def test_buy_limit_fills_only_when_the_ask_reaches_it(mkt: Market) -> None:
    order = mkt.buy("1", type=OrderType.LIMIT, price=D("1.08400"))
    assert order.status is OrderStatus.PENDING
    mkt.tick("EURUSD", "1.08400", "1.08410")  # the bid touches it, the ask does not
    assert mkt.engine.orders("alice")
    assert not mkt.positions
    result = mkt.tick("EURUSD", "1.08390", "1.08400")
    (filled,) = result.orders
    assert filled.status is OrderStatus.FILLED
    assert filled.average_price == D("1.08400")
    assert mkt.positions[0].ticket == order.ticket
    assert mkt.engine.orders("alice") == []


def test_sell_limit_fills_when_the_bid_reaches_it(mkt: Market) -> None:
    mkt.sell("1", type=OrderType.LIMIT, price=D("1.08600"))
    mkt.tick("EURUSD", "1.08590", "1.08600")  # only the ask touches it
    assert not mkt.positions
    mkt.tick("EURUSD", "1.08610", "1.08620")  # the bid passes it: filled at the bid
    (pos,) = mkt.positions
    assert pos.side is Side.SELL
    assert pos.open_price == D("1.08610")


def test_a_limit_already_reached_fills_at_once_at_the_better_market_price(mkt: Market) -> None:
    order = mkt.buy("1", type=OrderType.LIMIT, price=D("1.09000"))
    assert order.status is OrderStatus.FILLED
    assert order.average_price == D("1.08500")


def test_stops_trigger_on_the_side_they_would_be_done_at(mkt: Market) -> None:
    buy_stop = mkt.buy("1", type=OrderType.STOP, stop_price=D("1.08600"))
    sell_stop = mkt.sell("1", type=OrderType.STOP, price=D("1.08300"))
    assert buy_stop.stop_price == D("1.08600")
    assert sell_stop.stop_price == D("1.08300")
    mkt.tick("EURUSD", "1.08300", "1.08310")  # the bid reaches the sell stop, not the ask
    (short,) = mkt.positions
    assert short.side is Side.SELL
    assert short.open_price == D("1.08300")
    assert short.ticket == sell_stop.ticket
    mkt.tick("EURUSD", "1.08590", "1.08620")  # the ask gaps past the buy stop, not the bid
    long = next(p for p in mkt.positions if p.side is Side.BUY)
    assert long.open_price == D("1.08620")
    assert long.ticket == buy_stop.ticket


def test_a_stop_on_the_wrong_side_of_the_market_is_refused(mkt: Market) -> None:
    with pytest.raises(ValidationError):
        mkt.buy("1", type=OrderType.STOP, stop_price=D("1.08400"))  # below the ask
    with pytest.raises(ValidationError):
        mkt.sell("1", type=OrderType.STOP, stop_price=D("1.08600"))  # above the bid


def test_stop_limit_becomes_a_limit_when_triggered(mkt: Market) -> None:
    order = mkt.buy("1", type=OrderType.STOP_LIMIT, stop_price=D("1.08600"), price=D("1.08550"))
    mkt.tick("EURUSD", "1.08530", "1.08540")  # below the limit, but not triggered yet
    assert not mkt.positions
    result = mkt.tick("EURUSD", "1.08600", "1.08610")  # trigger: now a buy limit at 1.08550
    (triggered,) = result.orders
    assert triggered.status is OrderStatus.PENDING
    assert triggered.triggered_at == T0
    mkt.tick("EURUSD", "1.08560", "1.08570")
    assert not mkt.positions
    mkt.tick("EURUSD", "1.08540", "1.08550")
    (pos,) = mkt.positions
    assert pos.open_price == D("1.08550")
    assert pos.ticket == order.ticket


def test_modifying_a_limit_across_the_market_fills_it(mkt: Market) -> None:
    order = mkt.buy("1", type=OrderType.LIMIT, price=D("1.08000"))
    result = mkt.engine.modify_order("alice", order.id, OrderChanges(price=D("1.08500")))
    assert isinstance(result.subject, Order)
    assert result.subject.status is OrderStatus.FILLED
    assert mkt.positions[0].open_price == D("1.08500")


def test_modifying_a_stop_keeps_it_on_the_right_side_of_the_market(mkt: Market) -> None:
    order = mkt.buy("1", type=OrderType.STOP, stop_price=D("1.08600"))
    with pytest.raises(ValidationError):
        mkt.engine.modify_order("alice", order.id, OrderChanges(stop_price=D("1.08400")))
    result = mkt.engine.modify_order(
        "alice", order.id, OrderChanges(stop_price=D("1.08700"), volume=D("2"))
    )
    (moved,) = result.orders
    assert (moved.price, moved.stop_price, moved.volume) == (D("1.08700"), D("1.08700"), D("2"))
    assert mkt.engine.order("alice", order.id) == moved
    mkt.tick("EURUSD", "1.08600", "1.08610")  # the old trigger no longer fires
    assert not mkt.positions


def test_cancelling_a_pending_order(mkt: Market) -> None:
    order = mkt.buy("1", type=OrderType.LIMIT, price=D("1.08000"))
    result = mkt.engine.cancel_order("alice", order.id)
    (cancelled,) = result.orders
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancelled_at == T0
    mkt.tick("EURUSD", "1.07990", "1.08000")
    assert not mkt.positions
    with pytest.raises(NotFoundError):
        mkt.engine.cancel_order("alice", order.id)


# -- time in force and liquidity ---------------------------------------------------------


@pytest.fixture
def thin() -> Market:
    return Market(book_levels=1, book_level_volume=D("2"))  # 2 lots per quote


def test_fok_that_cannot_fill_entirely_fills_nothing(thin: Market) -> None:
    order = thin.buy("3", time_in_force=TimeInForce.FOK)
    assert order.status is OrderStatus.CANCELLED
    assert order.filled_volume == 0
    assert not thin.positions
    assert thin.account.balance == D("10000.00")
    assert thin.buy("2", time_in_force=TimeInForce.FOK).status is OrderStatus.FILLED


def test_ioc_fills_what_is_there_and_cancels_the_rest(thin: Market) -> None:
    order = thin.buy("3", time_in_force=TimeInForce.IOC)
    assert order.status is OrderStatus.CANCELLED
    assert order.filled_volume == D("2")
    assert thin.positions[0].volume == D("2")
    thin.tick("EURUSD", "1.08490", "1.08500")
    assert thin.positions[0].volume == D("2")  # nothing more later


def test_gtc_market_rest_fills_from_the_next_quote(thin: Market) -> None:
    order = thin.buy("3")
    assert order.status is OrderStatus.PENDING
    assert order.filled_volume == D("2")
    thin.tick("EURUSD", "1.08510", "1.08520")
    (pos,) = thin.positions  # the same order's fills share one position
    assert pos.ticket == order.ticket
    assert pos.volume == D("3")
    # (1.08500 * 2 + 1.08520 * 1) / 3 = 1.0850666.. kept to 3 extra digits
    assert pos.open_price == D("1.08506667")
    # each fill's margin at its own rate: 2000 EUR * 1.08500 + 1000 EUR * 1.08520
    assert pos.margin == D("3255.20")
    filled = thin.engine.orders("alice")
    assert filled == []


def test_ioc_limit_that_is_not_marketable_is_cancelled(mkt: Market) -> None:
    order = mkt.buy("1", type=OrderType.LIMIT, price=D("1.08000"), time_in_force=TimeInForce.IOC)
    assert order.status is OrderStatus.CANCELLED
    assert mkt.engine.orders("alice") == []


def test_order_book_depth(thin: Market) -> None:
    book = thin.engine.order_book("EURUSD", depth=3)
    assert [lv.price for lv in book.asks] == [D("1.08500"), D("1.08510"), D("1.08520")]
    assert [lv.price for lv in book.bids] == [D("1.08490"), D("1.08480"), D("1.08470")]
    assert {lv.volume for lv in book.asks} == {D("2")}
    payload = order_book_payload(book)
    assert payload["symbol"] == "EURUSD"
    assert payload["asks"][0] == ["1.08500", "2"]  # strings: no digit lost to a float
    assert payload["bids"][-1] == ["1.08470", "2"]
    assert payload["ts"] == book.ts


# -- stop loss, take profit, stop out --------------------------------------------------------


def test_long_stop_loss_triggers_on_the_bid(mkt: Market) -> None:
    mkt.buy("1", stop_loss=D("1.08300"), take_profit=D("1.08800"))
    mkt.tick("EURUSD", "1.08310", "1.08320")
    assert mkt.positions
    result = mkt.tick("EURUSD", "1.08300", "1.08310")
    (out,) = result.deals
    # (1.08300 - 1.08500) * 100000 = -200.00, closed at the bid
    assert (out.price, out.profit, out.reason) == (
        D("1.08300"),
        D("-200.00"),
        OrderReason.STOP_LOSS,
    )
    (closing,) = result.orders
    assert closing.comment == "[sl 1.08300]"
    assert closing.status is OrderStatus.FILLED
    assert not mkt.positions
    assert mkt.account.balance == D("9800.00")


def test_long_take_profit_triggers_on_the_bid(mkt: Market) -> None:
    mkt.buy("1", take_profit=D("1.08800"))
    mkt.tick("EURUSD", "1.08790", "1.08800")  # the ask touches it, the bid does not
    assert mkt.positions
    result = mkt.tick("EURUSD", "1.08810", "1.08820")
    (out,) = result.deals
    assert out.reason is OrderReason.TAKE_PROFIT
    assert out.profit == D("310.00")


def test_short_stop_loss_triggers_on_the_ask(mkt: Market) -> None:
    mkt.sell("1", stop_loss=D("1.08700"), take_profit=D("1.08300"))  # sold at 1.08490
    mkt.tick("EURUSD", "1.08685", "1.08695")
    assert mkt.positions
    result = mkt.tick("EURUSD", "1.08695", "1.08705")  # the ask passes the stop, the bid not
    (out,) = result.deals
    # closed at the ask: (1.08490 - 1.08705) * 100000 = -215.00
    assert (out.price, out.profit, out.reason) == (
        D("1.08705"),
        D("-215.00"),
        OrderReason.STOP_LOSS,
    )


def test_short_take_profit_triggers_on_the_ask(mkt: Market) -> None:
    mkt.sell("1", take_profit=D("1.08300"))
    mkt.tick("EURUSD", "1.08290", "1.08305")  # the bid passes the take profit, the ask not
    assert mkt.positions
    (out,) = mkt.tick("EURUSD", "1.08285", "1.08300").deals
    assert out.reason is OrderReason.TAKE_PROFIT
    assert out.profit == D("190.00")


def test_stops_on_the_wrong_side_are_refused(mkt: Market) -> None:
    with pytest.raises(ValidationError):
        mkt.buy("1", stop_loss=D("1.08600"))
    with pytest.raises(ValidationError):
        mkt.sell("1", take_profit=D("1.08600"))


def test_modify_position_sets_and_removes_levels(mkt: Market) -> None:
    mkt.buy("1")
    ticket = mkt.positions[0].ticket
    mkt.engine.modify_position("alice", ticket, stop_loss=D("1.08000"), take_profit=D("1.09"))
    pos = mkt.positions[0]
    assert (pos.stop_loss, pos.take_profit) == (D("1.08000"), D("1.09000"))
    mkt.engine.modify_position("alice", ticket, stop_loss=D(0))
    pos = mkt.positions[0]
    assert (pos.stop_loss, pos.take_profit) == (None, D("1.09000"))
    with pytest.raises(ValidationError):
        mkt.engine.modify_position("alice", ticket, take_profit=D("1.08000"))


def test_stop_out_closes_the_largest_loss_first() -> None:
    mkt = Market(initial_balance=D("1000"))
    mkt.buy("0.5")  # margin 500 EUR * 1.08500 = 542.50
    mkt.buy("0.1", "XAUUSD")  # margin 0.1 * 100 * 2030.00 / 100 = 203.00
    eur, gold = mkt.positions
    mkt.tick("XAUUSD", "2027.00", "2027.25")  # gold: (2027.00 - 2030.00) * 10 = -30.00
    # EURUSD at 1.07200: (1.07200 - 1.08500) * 50000 = -650.00
    # equity 1000 - 650 - 30 = 320.00; margin 745.50; level 42.92 % < 50 %
    result = mkt.tick("EURUSD", "1.07200", "1.07210")
    (out,) = result.deals
    assert out.position_ticket == eur.ticket
    assert out.reason is OrderReason.STOP_OUT
    assert out.profit == D("-650.00")
    assert result.orders[0].comment == "[so 42.92%]"
    # left: gold; equity 320.00, margin 203.00, level 157.64 %: no further stop-out
    (left,) = mkt.positions
    assert left.ticket == gold.ticket
    acc = mkt.account
    assert (acc.balance, acc.equity, acc.margin_level) == (D("350.00"), D("320.00"), D("157.64"))


def test_margin_call_flag_below_the_margin_call_level() -> None:
    mkt = Market(initial_balance=D("1000"))
    mkt.buy("0.5")  # margin 542.50
    mkt.tick("EURUSD", "1.07800", "1.07810")  # -350.00: equity 650.00, level 119.82 %
    assert not mkt.account.margin_call
    mkt.tick("EURUSD", "1.07600", "1.07610")  # -450.00: equity 550.00, level 101.38 %
    assert not mkt.account.margin_call
    mkt.tick("EURUSD", "1.07500", "1.07510")  # -500.00: equity 500.00, level 92.17 %
    assert mkt.account.margin_call
    assert mkt.positions


# -- netting ---------------------------------------------------------------------------------


def test_netting_adds_reduces_and_reverses_one_position() -> None:
    mkt = Market(account_mode=AccountMode.NETTING)
    first = mkt.buy("1")  # at 1.08500
    mkt.tick("EURUSD", "1.08590", "1.08600")
    mkt.buy("1")  # at 1.08600
    (pos,) = mkt.positions
    assert pos.ticket == first.ticket
    assert pos.volume == D("2")
    assert pos.open_price == D("1.08550")  # (1.08500 + 1.08600) / 2
    assert pos.margin == D("2171.00")  # 1085.00 + 1086.00

    mkt.tick("EURUSD", "1.08650", "1.08660")
    result = mkt.engine.place_order(
        "alice", OrderRequest("EURUSD", OrderType.MARKET, Side.SELL, D("0.5"))
    )
    (out,) = result.deals
    # (1.08650 - 1.08550) * 50000 = 50.00
    assert out.entry is DealEntry.OUT
    assert out.profit == D("50.00")
    (pos,) = mkt.positions
    assert pos.ticket == first.ticket
    assert pos.volume == D("1.5")

    reverse = mkt.sell("2")  # closes 1.5, opens 0.5 short
    (short,) = mkt.positions
    assert short.side is Side.SELL
    assert short.volume == D("0.5")
    assert short.ticket == reverse.ticket
    assert short.open_price == D("1.08650")
    # realised: 50.00 + (1.08650 - 1.08550) * 150000 = 50.00 + 150.00
    assert mkt.account.balance == D("10200.00")


def test_netting_reduction_needs_no_free_margin() -> None:
    mkt = Market(account_mode=AccountMode.NETTING, initial_balance=D("1200"))
    mkt.buy("1")  # margin 1085.00 of 1200
    with pytest.raises(InsufficientBalanceError):
        mkt.buy("0.5")
    assert mkt.sell("1").status is OrderStatus.FILLED
    assert mkt.positions == []


# -- refusals -------------------------------------------------------------------------------


def test_refusals_carry_seed_003_codes(mkt: Market) -> None:
    with pytest.raises(ValidationError):
        mkt.buy("0.001")
    with pytest.raises(ValidationError):
        mkt.buy("1", "NOPE")
    with pytest.raises(ValidationError):
        mkt.buy("1", type=OrderType.LIMIT)  # no price
    with pytest.raises(InsufficientBalanceError):
        mkt.buy("10")  # margin 10850.00 > 10000.00
    with pytest.raises(TradingError):
        mkt.buy("1", "USDCHF")  # no price yet
    mkt.open = False
    with pytest.raises(MarketClosedError):
        mkt.buy("1")
    assert mkt.engine.orders("alice") == []
    assert mkt.positions == []


def test_quotes_for_unknown_symbols_or_crossed_prices_change_nothing(mkt: Market) -> None:
    mkt.buy("1")
    assert mkt.tick("NOPE", "1.0", "1.1") == EngineResult()
    assert mkt.tick("EURUSD", "1.09000", "1.08000") == EngineResult()  # bid above ask
    assert mkt.positions[0].current_price == D("1.08490")


def test_foreign_and_unknown_ids_are_not_found(mkt: Market) -> None:
    mkt.engine.open_account("bob")
    order = mkt.buy("1", type=OrderType.LIMIT, price=D("1.08000"))
    mkt.buy("1")
    ticket = mkt.positions[0].ticket
    with pytest.raises(NotFoundError):
        mkt.engine.cancel_order("bob", order.id)
    with pytest.raises(NotFoundError):
        mkt.engine.close_position("bob", ticket)
    with pytest.raises(NotFoundError):
        mkt.engine.modify_order("alice", "ord_ffff", OrderChanges(price=D("1.07")))
    assert mkt.engine.positions("bob") == []


def test_a_pending_order_without_margin_at_the_trigger_is_rejected() -> None:
    mkt = Market(initial_balance=D("1500"))
    mkt.buy("1", type=OrderType.LIMIT, price=D("1.08400"))
    mkt.buy("1")  # uses 1085.00 of the margin
    result = mkt.tick("EURUSD", "1.08390", "1.08400")
    (rejected,) = result.orders
    assert rejected.status is OrderStatus.REJECTED
    assert "margin" in (rejected.reject_reason or "")
    assert len(mkt.positions) == 1


# -- the day, and a restart -------------------------------------------------------------------


def test_the_day_baseline_rolls_at_utc_midnight(mkt: Market) -> None:
    mkt.buy("1")
    mkt.tick("EURUSD", "1.08700", "1.08710")
    assert mkt.account.day_pnl == D("200.00")
    mkt.clock.t = T0 + 2 * 3600  # past midnight UTC
    result = mkt.tick("EURUSD", "1.08650", "1.08660")
    (acc,) = result.accounts
    assert acc.day_start == "2023-11-15"
    assert acc.day_start_equity == D("10200.00")
    assert acc.day_pnl == D("-50.00")


def test_restore_from_records_continues_exactly(mkt: Market) -> None:
    mkt.buy("1", stop_loss=D("1.08000"))
    mkt.sell("0.5", "USDJPY")
    mkt.buy("1", type=OrderType.LIMIT, price=D("1.08300"), comment="dip")
    records: dict[str, dict[object, dict[str, object]]] = {"acc": {}, "pos": {}, "ord": {}}
    for rec in [mkt.account, *mkt.positions, *mkt.engine.orders("alice")]:
        kind = {Account: "acc", Position: "pos", Order: "ord"}[type(rec)]
        key = getattr(rec, "user_id" if kind == "acc" else "ticket")
        records[kind][key] = json.loads(json.dumps(encode(rec)))

    next_ticket = next(mkt.tickets)  # the broker persists its ticket counter
    mkt.tickets = itertools.count(next_ticket)
    twin = Market()
    twin.tickets = itertools.count(next_ticket)
    twin.engine.restore(
        [decode(Account, r) for r in records["acc"].values()],
        [decode(Position, r) for r in records["pos"].values()],
        [decode(Order, r) for r in records["ord"].values()],
    )
    assert twin.account == mkt.account
    assert twin.positions == mkt.positions
    assert twin.engine.orders("alice") == mkt.engine.orders("alice")
    a = mkt.tick("EURUSD", "1.08290", "1.08300")
    b = twin.tick("EURUSD", "1.08290", "1.08300")
    assert [encode(c) for c in a.changes] == [encode(c) for c in b.changes]
    assert twin.account == mkt.account
