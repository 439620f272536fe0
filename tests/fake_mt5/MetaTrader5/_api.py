"""The package's functions, as the real ``MetaTrader5`` module exposes them.

Each call takes the terminal's lock, applies injected faults, catches the market up to
the clock, and sets ``last_error``: ``(1, "Success")`` on success, or the failure's
``(code, message)`` while returning ``None``/``False``. Like the real package, calls
before ``initialize`` (or after the terminal went away) fail with -10004.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from fxgate.brokers.paper.margin import CalcMode, calc_mode
from fxgate.domain.errors import FxgateError
from fxgate.domain.trading import Side

from . import _constants as c
from ._market import SECONDS, rates_array, to_seconds
from ._records import AccountInfo, BookInfo, SymbolInfo, TerminalInfo, Tick
from ._state import terminal
from ._terminal import USER, Terminal
from ._trading import order_check as _order_check
from ._trading import order_send as _order_send

F = TypeVar("F", bound=Callable[..., Any])

_OK = (c.RES_S_OK, "Success")
_NO_IPC = (c.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")


class CallFailed(Exception):
    """Raised inside a call to return its failure value with ``last_error`` set."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fail(code: int, message: str) -> CallFailed:
    return CallFailed(code, message)


def _api(failed: Any = None, *, needs_init: bool = True) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        name = fn.__name__

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            t = terminal()
            with t.lock:
                f = t.faults
                if f.fail_calls > 0 and (not f.fail_only or name in f.fail_only):
                    f.fail_calls -= 1
                    t.error = (f.fail_code, f.fail_message)
                    return failed
                if f.terminal_down and name != "initialize":
                    t.initialized = False
                    t.error = _NO_IPC
                    return failed
                if needs_init and not t.initialized:
                    t.error = _NO_IPC
                    return failed
                t.pump()
                try:
                    result = fn(t, *args, **kwargs)
                except CallFailed as e:
                    t.error = (e.code, e.message)
                    return failed
                except TypeError as e:
                    t.error = (c.RES_E_INVALID_PARAMS, f"Invalid arguments: {e}")
                    return failed
                except FxgateError:
                    t.error = (c.RES_E_FAIL, "Terminal: Call failed")
                    return failed
                t.error = _OK
                return result

        return call  # type: ignore[return-value]

    return wrap


# -- connection --------------------------------------------------------------------------


@_api(False, needs_init=False)
def initialize(
    t: Terminal,
    path: str | None = None,
    *,
    login: int | None = None,
    password: str | None = None,
    server: str | None = None,
    timeout: int | None = None,
    portable: bool = False,
) -> bool:
    if path is not None and not isinstance(path, str):
        raise fail(c.RES_E_INVALID_PARAMS, 'Invalid "path" argument')
    if t.faults.terminal_down:
        raise fail(c.RES_E_INTERNAL_FAIL_INIT, "IPC initialize failed, MetaTrader 5 x64 not found")
    if login is not None:
        _authorize(t, login, password, server)
    t.initialized = True
    return True


def _authorize(t: Terminal, login: Any, password: Any, server: Any) -> None:
    if isinstance(login, bool) or not isinstance(login, int):
        raise fail(c.RES_E_INVALID_PARAMS, 'Invalid "login" argument')
    ok = login == t.s.login and (t.s.password is None or password == t.s.password)
    if server is not None and server != t.s.server:
        ok = False
    if not ok:
        raise fail(c.RES_E_AUTH_FAILED, "Terminal: Authorization failed")


@_api(False)
def login(
    t: Terminal,
    login: int,
    password: str | None = None,
    server: str | None = None,
    timeout: int | None = None,
) -> bool:
    _authorize(t, login, password, server)
    return True


@_api(True, needs_init=False)
def shutdown(t: Terminal) -> bool:
    t.initialized = False
    return True


def last_error() -> tuple[int, str]:
    return terminal().error


@_api(None)
def version(t: Terminal) -> tuple[int, int, str]:
    return (500, t.s.build, "20 Nov 2025")


@_api(None)
def terminal_info(t: Terminal) -> TerminalInfo:
    return TerminalInfo(
        community_account=False,
        community_connection=False,
        connected=not t.faults.disconnected,
        dlls_allowed=False,
        trade_allowed=t.autotrading,
        tradeapi_disabled=False,
        email_enabled=False,
        ftp_enabled=False,
        notifications_enabled=False,
        mqid=False,
        build=t.s.build,
        maxbars=100_000,
        codepage=0,
        ping_last=25_000,
        community_balance=0.0,
        retransmission=0.0,
        company=t.s.company,
        name="MetaTrader 5 (fake)",
        language="English",
        path="C:\\Program Files\\MetaTrader 5",
        data_path="C:\\Users\\fake\\AppData\\Roaming\\MetaQuotes\\Terminal\\FAKE",
        commondata_path="C:\\Users\\fake\\AppData\\Roaming\\MetaQuotes\\Terminal\\Common",
    )


@_api(None)
def account_info(t: Terminal) -> AccountInfo:
    acc = t.engine.account(USER)
    terms = t.engine.terms()
    return AccountInfo(
        login=t.s.login,
        trade_mode=c.ACCOUNT_TRADE_MODE_DEMO,
        leverage=acc.leverage,
        limit_orders=200,
        margin_so_mode=c.ACCOUNT_STOPOUT_MODE_PERCENT,
        trade_allowed=True,
        trade_expert=True,
        margin_mode=c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
        currency_digits=2,
        fifo_close=False,
        balance=float(acc.balance),
        credit=0.0,
        profit=float(acc.profit),
        equity=float(acc.equity),
        margin=float(acc.margin),
        margin_free=float(acc.free_margin),
        margin_level=float(acc.margin_level or 0),
        margin_so_call=float(terms.margin_call_level),
        margin_so_so=float(terms.stop_out_level),
        margin_initial=0.0,
        margin_maintenance=0.0,
        assets=0.0,
        liabilities=0.0,
        commission_blocked=0.0,
        name=t.s.name,
        server=t.s.server,
        currency=acc.currency,
        company=t.s.company,
    )


# -- symbols and prices -------------------------------------------------------------------


def group_match(name: str, group: str | None) -> bool:
    """MT5's ``group`` filter: comma-separated masks, ``*`` wildcards, ``!`` excludes."""
    if not group:
        return True
    masks = [m.strip() for m in group.split(",") if m.strip()]
    include = [m for m in masks if not m.startswith("!")]
    exclude = [m[1:] for m in masks if m.startswith("!")]
    if any(fnmatchcase(name, m) for m in exclude):
        return False
    return not include or any(fnmatchcase(name, m) for m in include)


@_api(None)
def symbols_total(t: Terminal) -> int:
    return len(t.specs)


@_api(None)
def symbols_get(t: Terminal, group: str | None = None) -> tuple[SymbolInfo, ...]:
    return tuple(symbol_record(t, n) for n in t.specs if group_match(n, group))


@_api(None)
def symbol_info(t: Terminal, symbol: str) -> SymbolInfo:
    if symbol not in t.specs:
        raise fail(c.RES_E_NOT_FOUND, "Terminal: Not found")
    return symbol_record(t, symbol)


@_api(False)
def symbol_select(t: Terminal, symbol: str, enable: bool = True) -> bool:
    if symbol not in t.specs:
        raise fail(c.RES_E_NOT_FOUND, "Terminal: Not found")
    if enable:
        t.selected.add(symbol)
    else:
        if t.engine.positions(USER, symbol) or t.engine.orders(USER, symbol):
            raise fail(c.RES_E_FAIL, "Terminal: Call failed")
        t.selected.discard(symbol)
        t.books.discard(symbol)
    return True


@_api(None)
def symbol_info_tick(t: Terminal, symbol: str) -> Tick:
    if symbol not in t.specs or symbol not in t.selected:
        raise fail(c.RES_E_NOT_FOUND, "Terminal: Not found")
    h = t.history[symbol]
    if not h.ticks:  # selected, but no tick since the terminal started: zeros
        return Tick(0, 0.0, 0.0, 0.0, 0, 0, 0, 0.0)
    msc, bid, ask, flags, last, vol = h.ticks[-1]
    return Tick(msc // 1000, bid, ask, last, int(vol), msc, flags, vol)


def symbol_record(t: Terminal, name: str) -> SymbolInfo:
    spec = t.specs[name]
    selected = name in t.selected
    h = t.history[name]
    bid = ask = 0.0
    msc = 0
    if selected and h.ticks:
        msc, bid, ask, *_ = h.ticks[-1]
    point = float(spec.point)
    mode = calc_mode(spec)
    trade_calc_mode = {
        CalcMode.FOREX: c.SYMBOL_CALC_MODE_FOREX,
        CalcMode.CFD: c.SYMBOL_CALC_MODE_CFD,
    }.get(mode, c.SYMBOL_CALC_MODE_CFDLEVERAGE)
    quote = t.feed.latest(name)
    return SymbolInfo(
        custom=False, chart_mode=c.SYMBOL_CHART_MODE_BID, select=selected, visible=selected,
        session_deals=0, session_buy_orders=0, session_sell_orders=0, volume=0, volumehigh=0,
        volumelow=0, time=msc // 1000, digits=spec.digits,
        spread=round((ask - bid) / point) if selected else 0, spread_float=True,
        ticks_bookdepth=10,
        trade_calc_mode=trade_calc_mode,
        trade_mode=t.trade_modes[name], start_time=0, expiration_time=0,
        trade_stops_level=spec.stops_level_points, trade_freeze_level=0,
        trade_exemode=c.SYMBOL_TRADE_EXECUTION_MARKET, swap_mode=c.SYMBOL_SWAP_MODE_POINTS,
        swap_rollover3days=c.DAY_OF_WEEK_WEDNESDAY,
        margin_hedged_use_leg=spec.margin_hedged_use_leg,
        expiration_mode=c._EXPIRATION_GTC | c._EXPIRATION_DAY | c._EXPIRATION_SPECIFIED
        | c._EXPIRATION_SPECIFIED_DAY,
        filling_mode=t.filling[name], order_mode=c._ORDER_ALL, order_gtc_mode=0,
        option_mode=0, option_right=0,
        bid=bid, bidhigh=quote.day_high if quote and selected else 0.0,
        bidlow=quote.day_low if quote and selected else 0.0,
        ask=ask, askhigh=0.0, asklow=0.0, last=0.0, lasthigh=0.0, lastlow=0.0,
        volume_real=0.0, volumehigh_real=0.0, volumelow_real=0.0, option_strike=0.0,
        point=point, trade_tick_value=0.0, trade_tick_value_profit=0.0,
        trade_tick_value_loss=0.0, trade_tick_size=point,
        trade_contract_size=float(spec.contract_size), trade_accrued_interest=0.0,
        trade_face_value=0.0, trade_liquidity_rate=0.0,
        volume_min=float(spec.volume_min), volume_max=float(spec.volume_max),
        volume_step=float(spec.volume_step), volume_limit=0.0, swap_long=0.0, swap_short=0.0,
        margin_initial=0.0, margin_maintenance=0.0, session_volume=0.0, session_turnover=0.0,
        session_interest=0.0, session_buy_orders_volume=0.0, session_sell_orders_volume=0.0,
        session_open=quote.open if quote else 0.0, session_close=quote.close if quote else 0.0,
        session_aw=0.0, session_price_settlement=0.0, session_price_limit_min=0.0,
        session_price_limit_max=0.0, margin_hedged=float(spec.hedged_contract),
        price_change=quote.change_percent if quote and selected else 0.0,
        price_volatility=0.0, price_theoretical=0.0, price_greeks_delta=0.0,
        price_greeks_theta=0.0, price_greeks_gamma=0.0, price_greeks_vega=0.0,
        price_greeks_rho=0.0, price_greeks_omega=0.0, price_sensitivity=0.0, basis="",
        category="", currency_base=spec.base, currency_profit=spec.profit_currency,
        currency_margin=spec.margin_currency, bank="", description=spec.description,
        exchange="", formula="", isin="", name=name, page="",
        path={CalcMode.FOREX: "Forex\\", CalcMode.CFD: "Crypto\\"}.get(mode, "Metals\\") + name,
    )  # fmt: skip


def _need_selected(t: Terminal, symbol: Any) -> str:
    if not isinstance(symbol, str):
        raise fail(c.RES_E_INVALID_PARAMS, 'Invalid "symbol" argument')
    if symbol not in t.specs or symbol not in t.selected:
        raise fail(c.RES_E_NOT_FOUND, "Terminal: Not found")
    return symbol


@_api(False)
def market_book_add(t: Terminal, symbol: str) -> bool:
    t.books.add(_need_selected(t, symbol))
    return True


@_api(None)
def market_book_get(t: Terminal, symbol: str) -> tuple[BookInfo, ...]:
    if _need_selected(t, symbol) not in t.books:
        raise fail(c.RES_E_FAIL, "Terminal: Call failed")
    book = t.engine.order_book(symbol, 10)
    asks = [
        BookInfo(c.BOOK_TYPE_SELL, float(lv.price), int(lv.volume), float(lv.volume))
        for lv in reversed(book.asks)
    ]
    bids = [
        BookInfo(c.BOOK_TYPE_BUY, float(lv.price), int(lv.volume), float(lv.volume))
        for lv in book.bids
    ]
    return tuple(asks + bids)


@_api(False)
def market_book_release(t: Terminal, symbol: str) -> bool:
    if symbol not in t.books:
        raise fail(c.RES_E_FAIL, "Terminal: Call failed")
    t.books.discard(symbol)
    return True


# -- history: rates and ticks ---------------------------------------------------------------


def _timeframe(tf: Any) -> int:
    if tf not in SECONDS:
        raise fail(c.RES_E_INVALID_PARAMS, 'Invalid "timeframe" argument')
    return int(tf)


def _bars(t: Terminal, symbol: str, tf: Any) -> list[tuple[Any, ...]]:
    _need_selected(t, symbol)
    return t.history[symbol].bars(_timeframe(tf), t.s.history_bars)


@_api(None)
def copy_rates_from(t: Terminal, symbol: str, timeframe: int, date_from: Any, count: int) -> Any:
    until = to_seconds(date_from)
    bars = [b for b in _bars(t, symbol, timeframe) if b[0] <= until]
    return rates_array(bars[-count:] if count > 0 else [])


@_api(None)
def copy_rates_from_pos(
    t: Terminal, symbol: str, timeframe: int, start_pos: int, count: int
) -> Any:
    bars = _bars(t, symbol, timeframe)
    end = len(bars) - start_pos
    return rates_array(bars[max(end - count, 0) : max(end, 0)])


@_api(None)
def copy_rates_range(t: Terminal, symbol: str, timeframe: int, date_from: Any, date_to: Any) -> Any:
    lo, hi = to_seconds(date_from), to_seconds(date_to)
    return rates_array([b for b in _bars(t, symbol, timeframe) if lo <= b[0] <= hi])


def _tick_flags(flags: Any) -> int:
    if flags not in (c.COPY_TICKS_ALL, c.COPY_TICKS_INFO, c.COPY_TICKS_TRADE):
        raise fail(c.RES_E_INVALID_PARAMS, 'Invalid "flags" argument')
    return int(flags)


@_api(None)
def copy_ticks_from(t: Terminal, symbol: str, date_from: Any, count: int, flags: int) -> Any:
    _need_selected(t, symbol)
    h = t.history[symbol]
    return h.ticks_between(int(to_seconds(date_from) * 1000), 2**62, count, _tick_flags(flags))


@_api(None)
def copy_ticks_range(t: Terminal, symbol: str, date_from: Any, date_to: Any, flags: int) -> Any:
    _need_selected(t, symbol)
    h = t.history[symbol]
    lo, hi = int(to_seconds(date_from) * 1000), int(to_seconds(date_to) * 1000)
    return h.ticks_between(lo, hi, None, _tick_flags(flags))


# -- positions and orders ----------------------------------------------------------------------


def _filter(items: list[Any], symbol: str | None, group: str | None) -> list[Any]:
    if symbol is not None:
        return [i for i in items if i.symbol == symbol]
    return [i for i in items if group_match(i.symbol, group)]


@_api(None)
def positions_total(t: Terminal) -> int:
    return len(t.engine.positions(USER))


@_api(None)
def positions_get(
    t: Terminal, symbol: str | None = None, group: str | None = None, ticket: int | None = None
) -> tuple[Any, ...]:
    items = t.engine.positions(USER)
    if ticket is not None:
        items = [p for p in items if p.ticket == ticket]
    return tuple(t.position_record(p) for p in _filter(items, symbol, group))


@_api(None)
def orders_total(t: Terminal) -> int:
    return len(t.engine.orders(USER))


@_api(None)
def orders_get(
    t: Terminal, symbol: str | None = None, group: str | None = None, ticket: int | None = None
) -> tuple[Any, ...]:
    items = t.engine.orders(USER)
    if ticket is not None:
        items = [o for o in items if o.ticket == ticket]
    return tuple(t.order_record(o) for o in _filter(items, symbol, group))


def _history(
    records: list[Any],
    time_of: Callable[[Any], int],
    date_from: Any,
    date_to: Any,
    group: str | None,
    ticket: int | None,
    position: int | None,
) -> tuple[Any, ...]:
    if ticket is not None:
        return tuple(r for r in records if r.ticket == ticket)
    if position is not None:
        return tuple(r for r in records if r.position_id == position)
    if date_from is None or date_to is None:
        raise fail(c.RES_E_INVALID_PARAMS, "Invalid arguments")
    lo, hi = to_seconds(date_from), to_seconds(date_to)
    return tuple(
        r for r in records if lo <= time_of(r) <= hi and (not group or group_match(r.symbol, group))
    )


@_api(None)
def history_orders_total(t: Terminal, date_from: Any, date_to: Any) -> int:
    return len(_history(list(t.orders_done.values()), _done, date_from, date_to, None, None, None))


@_api(None)
def history_orders_get(
    t: Terminal,
    date_from: Any = None,
    date_to: Any = None,
    group: str | None = None,
    ticket: int | None = None,
    position: int | None = None,
) -> tuple[Any, ...]:
    return _history(
        list(t.orders_done.values()), _done, date_from, date_to, group, ticket, position
    )


def _done(order: Any) -> int:
    return int(order.time_setup)


def _deal_time(deal: Any) -> int:
    return int(deal.time)


@_api(None)
def history_deals_total(t: Terminal, date_from: Any, date_to: Any) -> int:
    return len(_history(list(t.deals.values()), _deal_time, date_from, date_to, None, None, None))


@_api(None)
def history_deals_get(
    t: Terminal,
    date_from: Any = None,
    date_to: Any = None,
    group: str | None = None,
    ticket: int | None = None,
    position: int | None = None,
) -> tuple[Any, ...]:
    return _history(list(t.deals.values()), _deal_time, date_from, date_to, group, ticket, position)


# -- calculations and trading ---------------------------------------------------------------------


def _calc_args(t: Terminal, action: Any, symbol: Any, volume: Any) -> tuple[Side, str, Decimal]:
    if action not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL):
        raise fail(c.RES_E_INVALID_PARAMS, 'Invalid "action" argument')
    if symbol not in t.specs:
        raise fail(c.RES_E_NOT_FOUND, "Terminal: Not found")
    if isinstance(volume, bool) or not isinstance(volume, int | float) or volume <= 0:
        raise fail(c.RES_E_INVALID_PARAMS, 'Invalid "volume" argument')
    side = Side.BUY if action == c.ORDER_TYPE_BUY else Side.SELL
    return side, str(symbol), Decimal(repr(float(volume)))


@_api(None)
def order_calc_margin(t: Terminal, action: int, symbol: str, volume: float, price: float) -> float:
    side, sym, vol = _calc_args(t, action, symbol, volume)
    return float(t.engine.calc_margin(USER, side, sym, vol, Decimal(repr(float(price)))))


@_api(None)
def order_calc_profit(
    t: Terminal, action: int, symbol: str, volume: float, price_open: float, price_close: float
) -> float:
    side, sym, vol = _calc_args(t, action, symbol, volume)
    return float(
        t.engine.calc_profit(
            USER,
            side,
            sym,
            vol,
            Decimal(repr(float(price_open))),
            Decimal(repr(float(price_close))),
        )
    )


@_api(None)
def order_check(t: Terminal, request: dict[str, Any]) -> Any:
    return _order_check(t, request, fail)


@_api(None)
def order_send(t: Terminal, request: dict[str, Any]) -> Any:
    return _order_send(t, request, fail)
