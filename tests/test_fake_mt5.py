"""The fake MetaTrader5 package behaves as the real one does where an adapter can tell.

In-process: the fake is put first on ``sys.path`` and reset before each test with a
manual clock and no random ticks, so every price is one the test set.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.fake_mt5 import RemoteControl, daemon_env, free_port, use_in_process

use_in_process()

import MetaTrader5 as mt5  # noqa: E402
from MetaTrader5 import _control as ctl  # noqa: E402
from MetaTrader5 import _server  # noqa: E402

START = 1_767_261_600.0  # 2026-01-01 10:00 UTC, a Thursday


@pytest.fixture
def term() -> Iterator[Any]:
    ctl.reset({"clock": "manual", "start_time": START, "random_ticks": False})
    ctl.set_price("EURUSD", 1.1, 1.1001)
    assert mt5.initialize() is True
    yield mt5
    mt5.shutdown()


def buy(volume: float = 0.1, **extra: Any) -> Any:
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": volume,
        "type": mt5.ORDER_TYPE_BUY,
        "type_filling": mt5.ORDER_FILLING_IOC,
        "deviation": 10,
        "magic": 777,
        "comment": "fx:abc",
    }
    return mt5.order_send({**request, **extra})


# -- the package's surface ------------------------------------------------------------


def test_constants_have_the_real_values() -> None:
    assert (mt5.TIMEFRAME_M1, mt5.TIMEFRAME_H1, mt5.TIMEFRAME_H4) == (1, 16385, 16388)
    assert (mt5.TIMEFRAME_D1, mt5.TIMEFRAME_W1, mt5.TIMEFRAME_MN1) == (16408, 32769, 49153)
    assert (mt5.ORDER_TYPE_BUY_STOP_LIMIT, mt5.ORDER_TYPE_CLOSE_BY) == (6, 8)
    assert (mt5.TRADE_ACTION_DEAL, mt5.TRADE_ACTION_PENDING, mt5.TRADE_ACTION_REMOVE) == (1, 5, 8)
    assert (mt5.ORDER_FILLING_FOK, mt5.ORDER_FILLING_IOC, mt5.ORDER_FILLING_RETURN) == (0, 1, 2)
    assert (mt5.TRADE_RETCODE_DONE, mt5.TRADE_RETCODE_CLIENT_DISABLES_AT) == (10009, 10027)
    assert mt5.TRADE_RETCODE_INVALID_FILL == 10030
    assert (mt5.COPY_TICKS_ALL, mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING) == (-1, 2)
    assert (mt5.RES_E_INTERNAL_FAIL_CONNECT, mt5.RES_E_INTERNAL_FAIL_TIMEOUT) == (-10004, -10005)
    assert not hasattr(mt5, "SYMBOL_FILLING_FOK")  # reported missing from the real package


def test_records_have_the_real_fields_in_order(term: Any) -> None:
    assert mt5.TradePosition._fields[:6] == (
        "ticket", "time", "time_msc", "time_update", "time_update_msc", "type",
    )  # fmt: skip
    assert mt5.TradeDeal._fields[-4:] == ("fee", "symbol", "comment", "external_id")
    assert mt5.OrderSendResult._fields[-1] == "request"
    assert len(mt5.AccountInfo._fields) == 28
    result = buy()
    assert isinstance(result.request, mt5.TradeRequest)
    assert result._asdict()["request"].comment == "fx:abc"
    assert result.request._fields == (
        "action", "magic", "order", "symbol", "volume", "price", "stoplimit", "sl", "tp",
        "deviation", "type", "type_filling", "type_time", "expiration", "comment",
        "position", "position_by",
    )  # fmt: skip
    positions = mt5.positions_get()
    assert isinstance(positions, tuple)
    assert len(positions) == 1
    assert positions[0]._asdict()["symbol"] == "EURUSD"
    info = mt5.account_info()
    assert info.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    assert info.margin > 0


def test_calls_fail_with_last_error_until_initialize_and_each_call_overwrites_it() -> None:
    ctl.reset({"clock": "manual", "start_time": START, "random_ticks": False})
    assert mt5.account_info() is None
    assert mt5.last_error() == (-10004, "No IPC connection")
    assert mt5.initialize() is True
    assert mt5.last_error() == (1, "Success")
    assert mt5.symbol_info("NOPE") is None
    assert mt5.last_error()[0] == mt5.RES_E_NOT_FOUND
    assert mt5.symbols_total() == len(mt5.symbols_get())
    assert mt5.last_error() == (1, "Success")
    assert mt5.positions_get() == ()
    assert mt5.orders_get() == ()
    assert mt5.initialize(login=1, password="x") is False
    assert mt5.last_error()[0] == mt5.RES_E_AUTH_FAILED


def test_a_symbol_outside_market_watch_has_no_tick_until_selected(term: Any) -> None:
    assert mt5.symbol_info_tick("XAUUSD") is None
    info = mt5.symbol_info("XAUUSD")
    assert info is not None
    assert info.select is False
    assert info.bid == 0.0
    assert mt5.copy_rates_from_pos("XAUUSD", mt5.TIMEFRAME_M1, 0, 10) is None
    assert mt5.symbol_select("XAUUSD", True) is True
    tick = mt5.symbol_info_tick("XAUUSD")
    assert tick is not None
    assert tick.bid > 0
    assert tick.ask > tick.bid
    assert mt5.symbol_info("XAUUSD").select is True
    assert [s.name for s in mt5.symbols_get(group="*USD*,!XAU*")] == [
        s.name for s in mt5.symbols_get() if "USD" in s.name and not s.name.startswith("XAU")
    ]


def test_symbol_info_carries_the_spec(term: Any) -> None:
    info = mt5.symbol_info("EURUSD")
    assert (info.digits, info.point, info.trade_contract_size) == (5, 0.00001, 100000.0)
    assert (info.volume_min, info.volume_step) == (0.01, 0.01)
    assert info.trade_calc_mode == mt5.SYMBOL_CALC_MODE_FOREX
    assert info.filling_mode == 3
    assert info.trade_mode == mt5.SYMBOL_TRADE_MODE_FULL
    assert (info.currency_base, info.currency_profit, info.bid, info.ask) == (
        "EUR", "USD", 1.1, 1.1001,
    )  # fmt: skip


def test_ticks_since_the_last_time_msc_are_each_seen_once(term: Any) -> None:
    first = mt5.copy_ticks_from("EURUSD", START - 60, 1000, mt5.COPY_TICKS_ALL)
    assert first.dtype.names == (
        "time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real",
    )  # fmt: skip
    last = int(first["time_msc"][-1])
    for bid in (1.1002, 1.1003, 1.1004):
        ctl.set_price("EURUSD", bid, bid + 0.0001)  # same clock: same millisecond
    new = mt5.copy_ticks_from("EURUSD", (last + 1) / 1000, 1000, mt5.COPY_TICKS_ALL)
    assert list(new["bid"]) == [1.1002, 1.1003, 1.1004]
    assert list(np.diff(new["time_msc"])) == [1, 1]
    assert mt5.symbol_info_tick("EURUSD").time_msc == new["time_msc"][-1]
    span = mt5.copy_ticks_range("EURUSD", START - 60, START + 60, mt5.COPY_TICKS_ALL)
    assert len(span) == len(first) + 3
    assert len(mt5.copy_ticks_from("EURUSD", START - 60, 10, mt5.COPY_TICKS_TRADE)) == 0


def test_trade_ticks_are_in_the_history_and_copy_ticks_filters_them(term: Any) -> None:
    """An exchange's executions (``trade``) are ticks with ``TICK_FLAG_LAST``/``VOLUME``
    and the aggressor's side; ``COPY_TICKS_TRADE`` keeps them, ``COPY_TICKS_INFO`` the
    bid/ask ticks, ``COPY_TICKS_ALL`` both; later ticks carry the last price."""
    since = mt5.symbol_info_tick("EURUSD").time_msc + 1
    msc = ctl.trade("EURUSD", 1.10005, 2.5, "sell")
    ctl.set_price("EURUSD", 1.1001, 1.1002)
    every = mt5.copy_ticks_from("EURUSD", since / 1000, 100, mt5.COPY_TICKS_ALL)
    trades = mt5.copy_ticks_from("EURUSD", since / 1000, 100, mt5.COPY_TICKS_TRADE)
    info = mt5.copy_ticks_from("EURUSD", since / 1000, 100, mt5.COPY_TICKS_INFO)
    assert len(every) == 2
    assert [int(t) for t in trades["time_msc"]] == [msc]
    (t,) = trades
    assert (float(t["last"]), float(t["volume_real"]), int(t["volume"])) == (1.10005, 2.5, 2)
    assert int(t["flags"]) == mt5.TICK_FLAG_LAST | mt5.TICK_FLAG_VOLUME | mt5.TICK_FLAG_SELL
    assert list(info["bid"]) == [1.1001]
    assert float(info["last"][0]) == 1.10005
    assert mt5.symbol_info_tick("EURUSD").last == 1.10005


def test_trade_symbols_print_the_simulated_ticks_volumes() -> None:
    ctl.reset({"clock": "manual", "start_time": START, "trade_symbols": ["BTCUSD"]})
    mt5.initialize()
    ctl.advance(30)
    btc = mt5.copy_ticks_from("BTCUSD", START - 60, 10_000, mt5.COPY_TICKS_TRADE)
    assert len(btc) > 3
    assert all(int(f) & mt5.TICK_FLAG_LAST for f in btc["flags"])
    assert all(int(f) & (mt5.TICK_FLAG_BUY | mt5.TICK_FLAG_SELL) for f in btc["flags"])
    assert (btc["volume_real"] > 0).all()
    assert len(mt5.copy_ticks_from("EURUSD", START - 60, 10_000, mt5.COPY_TICKS_TRADE)) == 0


def test_rates_are_structured_arrays_with_a_past_and_live_bars(term: Any) -> None:
    ctl.advance(60)
    ctl.set_price("EURUSD", 1.1010, 1.1011)
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 5)
    assert rates.dtype.names == (
        "time", "open", "high", "low", "close", "tick_volume", "spread", "real_volume",
    )  # fmt: skip
    assert len(rates) == 5
    assert list(np.diff(rates["time"])) == [60] * 4
    assert rates[-1]["close"] == 1.1010
    assert rates[-1]["time"] == int(START) + 60
    h1 = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_H1, START - 10 * 3600, START)
    assert len(h1) == 11
    assert h1[-1]["time"] == int(START)
    d1 = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_D1, START, 3)
    assert len(d1) == 3
    assert d1[-1]["time"] == int(START) // 86400 * 86400
    assert mt5.copy_rates_from_pos("EURUSD", 7, 0, 5) is None  # no such timeframe
    assert mt5.last_error()[0] == mt5.RES_E_INVALID_PARAMS


# -- trading --------------------------------------------------------------------------


def test_market_order_opens_a_position_named_by_its_order(term: Any) -> None:
    result = buy(0.2, sl=1.09, tp=1.12)
    assert result.retcode == mt5.TRADE_RETCODE_DONE
    assert result.price == 1.1001
    (pos,) = mt5.positions_get(symbol="EURUSD")
    assert pos.ticket == result.order == pos.identifier
    assert (pos.magic, pos.comment, pos.sl, pos.tp) == (777, "fx:abc", 1.09, 1.12)
    assert pos.reason == mt5.POSITION_REASON_EXPERT
    (deal,) = mt5.history_deals_get(position=pos.ticket)
    assert deal.ticket == result.deal != result.order
    assert (deal.entry, deal.type, deal.magic) == (mt5.DEAL_ENTRY_IN, mt5.DEAL_TYPE_BUY, 777)
    (order,) = mt5.history_orders_get(ticket=result.order)
    assert order.state == mt5.ORDER_STATE_FILLED
    assert order.position_id == pos.ticket
    balance = [d for d in mt5.history_deals_get(START - 1, START + 1) if d.type == 2]
    assert balance
    assert balance[0].profit == 10000.0


def test_partial_then_full_close_by_an_opposite_deal(term: Any) -> None:
    opened = buy(0.3)
    ctl.advance(1)
    ctl.set_price("EURUSD", 1.1050, 1.1051)
    before = mt5.positions_get(ticket=opened.order)[0].time_update_msc
    part = buy(0.1, type=mt5.ORDER_TYPE_SELL, position=opened.order)
    assert part.retcode == 10009
    assert part.price == 1.1050
    pos = mt5.positions_get(ticket=opened.order)[0]
    assert pos.volume == 0.2
    assert pos.time_update_msc > before
    rest = buy(0.2, type=mt5.ORDER_TYPE_SELL, position=opened.order)
    assert rest.retcode == 10009
    assert mt5.positions_get() == ()
    outs = [d for d in mt5.history_deals_get(position=opened.order) if d.entry == 1]
    assert [d.volume for d in outs] == [0.1, 0.2]
    assert round(sum(d.profit for d in outs), 2) == 147.0  # (1.1050 - 1.1001) * 30,000
    assert buy(0.1, type=1, position=opened.order).retcode == mt5.TRADE_RETCODE_POSITION_CLOSED


def test_pending_orders_place_modify_fill_and_remove(term: Any) -> None:
    place = {
        "action": mt5.TRADE_ACTION_PENDING,
        "symbol": "EURUSD",
        "volume": 0.1,
        "type": mt5.ORDER_TYPE_BUY_LIMIT,
        "price": 1.0950,
        "sl": 1.0900,
        "type_filling": mt5.ORDER_FILLING_RETURN,
        "type_time": mt5.ORDER_TIME_GTC,
        "magic": 5,
        "comment": "lim",
    }
    placed = mt5.order_send(place)
    assert placed.retcode == 10009
    assert placed.deal == 0
    (order,) = mt5.orders_get()
    assert (order.ticket, order.state, order.price_open, order.sl) == (
        placed.order, mt5.ORDER_STATE_PLACED, 1.0950, 1.09,
    )  # fmt: skip
    modified = mt5.order_send(
        {"action": mt5.TRADE_ACTION_MODIFY, "order": placed.order, "price": 1.0960,
         "sl": 1.0910, "tp": 0.0}
    )  # fmt: skip
    assert modified.retcode == 10009
    assert mt5.orders_get()[0].price_open == 1.096
    ctl.set_price("EURUSD", 1.0955, 1.0956)  # the ask reaches the limit
    assert mt5.orders_get() == ()
    (pos,) = mt5.positions_get()
    assert pos.ticket == placed.order
    assert pos.magic == 5
    assert pos.sl == 1.091
    ctl.set_price("EURUSD", 1.0905, 1.0906)  # the bid reaches the stop loss
    assert mt5.positions_get() == ()
    out = [d for d in mt5.history_deals_get(position=pos.ticket) if d.entry == 1]
    assert out[0].reason == mt5.DEAL_REASON_SL
    assert out[0].magic == 5
    stop = mt5.order_send({**place, "type": mt5.ORDER_TYPE_SELL_STOP, "price": 1.08, "sl": 0.0})
    assert stop.retcode == 10009
    removed = mt5.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": stop.order})
    assert removed.retcode == 10009
    assert mt5.orders_get() == ()
    assert mt5.history_orders_get(ticket=stop.order)[0].state == mt5.ORDER_STATE_CANCELED


def test_stop_limit_and_expiry(term: Any) -> None:
    sl_order = mt5.order_send(
        {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": mt5.ORDER_TYPE_BUY_STOP_LIMIT,
         "price": 1.1020, "stoplimit": 1.1015, "type_filling": 2,
         "type_time": mt5.ORDER_TIME_SPECIFIED, "expiration": int(START) + 60}
    )  # fmt: skip
    assert sl_order.retcode == 10009
    (order,) = mt5.orders_get()
    assert (order.price_open, order.price_stoplimit) == (1.102, 1.1015)
    assert order.time_expiration == int(START) + 60
    ctl.advance(61)
    assert mt5.orders_get() == ()
    assert mt5.history_orders_get(ticket=sl_order.order)[0].state == mt5.ORDER_STATE_EXPIRED
    past = mt5.order_send(
        {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2, "price": 1.09,
         "type_filling": 2, "type_time": 2, "expiration": int(START) - 1}
    )  # fmt: skip
    assert past.retcode == mt5.TRADE_RETCODE_INVALID_EXPIRATION


def test_sltp_on_a_position(term: Any) -> None:
    opened = buy()
    ctl.advance(1)
    done = mt5.order_send(
        {"action": mt5.TRADE_ACTION_SLTP, "symbol": "EURUSD", "position": opened.order,
         "sl": 1.095, "tp": 1.11}
    )  # fmt: skip
    assert done.retcode == 10009
    pos = mt5.positions_get()[0]
    assert (pos.sl, pos.tp) == (1.095, 1.11)
    assert pos.time_update_msc > pos.time_msc
    again = mt5.order_send(
        {"action": 6, "symbol": "EURUSD", "position": opened.order, "sl": 1.095, "tp": 1.11}
    )
    assert again.retcode == mt5.TRADE_RETCODE_NO_CHANGES


@pytest.mark.parametrize(
    ("extra", "retcode"),
    [
        ({"type_filling": mt5.ORDER_FILLING_RETURN}, 10030),
        ({"volume": 0.015}, 10014),
        ({"volume": 500.0}, 10014),
        ({"volume": 90.0}, 10019),
        ({"sl": 1.2}, 10016),
    ],
)
def test_refusals_have_the_servers_retcodes(term: Any, extra: dict[str, Any], retcode: int) -> None:
    result = buy(**extra)
    assert result.retcode == retcode
    assert result.order == 0
    assert mt5.positions_get() == ()
    assert mt5.last_error() == (1, "Success")  # a retcode is an answer, not a failure


def test_more_refusals(term: Any) -> None:
    limit = {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2, "price": 1.2,
             "type_filling": 2}  # fmt: skip
    assert mt5.order_send(limit).retcode == mt5.TRADE_RETCODE_INVALID_PRICE
    ctl.set_filling("EURUSD", 2)
    assert buy(type_filling=mt5.ORDER_FILLING_FOK).retcode == 10030
    assert buy(type_filling=mt5.ORDER_FILLING_IOC).retcode == 10009
    ctl.market_closed("EURUSD")
    assert buy().retcode == mt5.TRADE_RETCODE_MARKET_CLOSED
    assert mt5.order_check({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                            "type_filling": 1}).retcode == 10018  # fmt: skip
    ctl.market_closed("EURUSD", False)
    assert buy(comment="x" * 32) is None
    assert mt5.last_error() == (-2, 'Invalid "comment" argument')
    assert buy(volume="0.1") is None
    assert mt5.last_error()[0] == -2
    assert mt5.symbol_select("XAUUSD", False)
    gold = buy(symbol="XAUUSD")
    assert gold.retcode == mt5.TRADE_RETCODE_INVALID


def test_order_check_and_calculations(term: Any) -> None:
    check = mt5.order_check(
        {"action": 1, "symbol": "EURUSD", "volume": 1.0, "type": 0, "type_filling": 1}
    )
    assert check.retcode == 0
    assert check.comment == "Done"
    margin = mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1001)
    assert margin == pytest.approx(1100.1)
    assert check.margin == pytest.approx(margin)
    profit = mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1, 1.101)
    assert profit == pytest.approx(100.0)
    assert mt5.positions_get() == ()  # nothing was sent
    too_big = mt5.order_check(
        {"action": 1, "symbol": "EURUSD", "volume": 90.0, "type": 0, "type_filling": 1}
    )
    assert too_big.retcode == mt5.TRADE_RETCODE_NO_MONEY


def test_market_book(term: Any) -> None:
    assert mt5.market_book_get("EURUSD") is None
    assert mt5.market_book_add("EURUSD") is True
    book = mt5.market_book_get("EURUSD")
    sells = [b for b in book if b.type == mt5.BOOK_TYPE_SELL]
    buys = [b for b in book if b.type == mt5.BOOK_TYPE_BUY]
    assert sells[-1].price == 1.1001
    assert buys[0].price == 1.1
    assert mt5.market_book_release("EURUSD") is True


# -- things that happen in the terminal, and faults --------------------------------------


def test_positions_and_orders_made_by_hand_between_two_polls(term: Any) -> None:
    assert mt5.positions_total() == 0
    ticket = ctl.open_position("EURUSD", "sell", "0.5", comment="manual")
    ea = ctl.place_order("EURUSD", "buy", "0.1", "limit", "1.09", magic=99, expert=True)
    (pos,) = mt5.positions_get()
    assert (pos.ticket, pos.type, pos.magic, pos.reason) == (ticket, 1, 0, 0)
    (order,) = mt5.orders_get()
    assert (order.ticket, order.magic, order.reason) == (ea, 99, mt5.ORDER_REASON_EXPERT)
    ctl.close_position(ticket)
    assert mt5.positions_get() == ()


def test_ipc_timeouts_on_demand(term: Any) -> None:
    ctl.fail_next(2)
    assert mt5.positions_get() is None
    assert mt5.last_error() == (-10005, "IPC timeout")
    assert mt5.account_info() is None
    assert mt5.account_info() is not None
    assert mt5.last_error() == (1, "Success")
    ctl.fail_next(1, only=["order_send"])
    assert mt5.positions_total() == 0
    assert buy() is None
    assert mt5.positions_get() == ()


def test_terminal_down_until_told_and_initialized_again(term: Any) -> None:
    ctl.terminal_down()
    assert mt5.terminal_info() is None
    assert mt5.last_error()[0] == -10004
    assert mt5.initialize() is False
    assert mt5.last_error()[0] == -10003
    ctl.terminal_down(False)
    assert mt5.account_info() is None
    assert mt5.last_error()[0] == -10004
    assert mt5.initialize() is True
    assert mt5.account_info() is not None


def test_autotrading_off_and_disconnected(term: Any) -> None:
    ctl.autotrading(False)
    assert mt5.terminal_info().trade_allowed is False
    assert buy().retcode == mt5.TRADE_RETCODE_CLIENT_DISABLES_AT
    ctl.autotrading(True)
    ctl.disconnect()
    assert mt5.terminal_info().connected is False
    assert buy().retcode == mt5.TRADE_RETCODE_CONNECTION
    ctl.disconnect(False)
    assert buy().retcode == 10009


def test_an_executed_order_whose_answer_is_lost_exists_once(term: Any) -> None:
    ctl.lose_answers(1)
    assert buy(comment="fx:once") is None
    assert mt5.last_error() == (-10005, "IPC timeout")
    (pos,) = mt5.positions_get()  # it was executed: a retry must look first
    assert (pos.comment, pos.magic) == ("fx:once", 777)
    found = [o for o in mt5.history_orders_get(START - 1, START + 1) if o.comment == "fx:once"]
    assert len(found) == 1
    ctl.lose_answers(1, mode="raise")
    with pytest.raises(ConnectionResetError):
        buy(comment="fx:twice")
    assert len(mt5.positions_get()) == 2


def test_requotes_n_times_then_executes(term: Any) -> None:
    ctl.requote(2)
    assert [buy().retcode for _ in range(3)] == [10004, 10004, 10009]
    assert len(mt5.positions_get()) == 1


# -- out of process -----------------------------------------------------------------------


def test_http_control_drives_the_same_terminal(term: Any) -> None:
    port = _server.start("127.0.0.1", 0)
    remote = RemoteControl(port)
    remote.set_price(symbol="EURUSD", bid=1.2, ask=1.2001)
    assert mt5.symbol_info_tick("EURUSD").bid == 1.2
    ticket = remote.open_position(symbol="EURUSD", side="buy", volume=0.1)
    assert mt5.positions_get()[0].ticket == ticket
    with pytest.raises(Exception, match="unknown control function"):
        remote.call("nope")


def test_a_subprocess_imports_the_fake_configured_from_the_environment() -> None:
    port = free_port()
    env = daemon_env({"login": 42, "market_watch": ["EURUSD"]}, control_port=port)
    code = (
        "import json, MetaTrader5 as m; m.initialize(login=42);"
        "print(json.dumps([m.__file__, m.account_info().login,"
        " [s.name for s in m.symbols_get() if s.select]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    path, login, selected = json.loads(out.stdout)
    assert "fake_mt5" in path
    assert login == 42
    assert selected == ["EURUSD"]


def test_a_quiet_market_has_zero_ticks_and_no_prices_until_the_first_one() -> None:
    ctl.reset({"clock": "manual", "start_time": START, "random_ticks": False, "priced": False})
    assert mt5.initialize()
    assert mt5.symbol_info_tick("EURUSD") == (0, 0.0, 0.0, 0.0, 0, 0, 0, 0.0)
    assert len(mt5.copy_ticks_from("EURUSD", 0, 100, mt5.COPY_TICKS_ALL)) == 0
    assert buy().retcode == mt5.TRADE_RETCODE_PRICE_OFF
    ctl.set_price("EURUSD", 1.1, 1.1001)
    assert buy().retcode == mt5.TRADE_RETCODE_DONE


def test_several_terminals_in_one_process() -> None:
    from MetaTrader5 import _state
    from MetaTrader5._scenario import Scenario
    from MetaTrader5._terminal import Terminal

    ctl.reset({"random_ticks": False})
    other = Terminal(Scenario(login=99, random_ticks=False))
    with _state.use(other):
        assert mt5.initialize()
        assert mt5.account_info().login == 99
    assert mt5.account_info() is None  # the default terminal was never initialized


def test_a_subprocess_is_driven_over_http_between_two_polls() -> None:
    port = free_port()
    env = daemon_env({"random_ticks": False}, control_port=port)
    code = (
        "import sys, MetaTrader5 as m; m.initialize(); print(m.positions_total(), flush=True);"
        "sys.stdin.readline(); p = m.positions_get()[0];"
        "print(p.ticket, p.magic, p.comment, flush=True)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        assert proc.stdout.readline().strip() == "0"  # first poll: nothing
        remote = RemoteControl(port)
        ticket = remote.open_position(
            symbol="EURUSD", side="buy", volume=0.1, comment="EA", magic=3
        )
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().split() == [str(ticket), "3", "EA"]  # second poll
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
