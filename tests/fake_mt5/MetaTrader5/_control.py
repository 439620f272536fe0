"""The test's side of the fake terminal: prices, time, trading "by hand", faults.

Everything here acts on the process's one terminal (``_state``); the HTTP control server
(``_server``) exposes the same functions by name for a daemon subprocess. Functions
take and return JSON-friendly values (prices and volumes may be strings or numbers).
"""

from __future__ import annotations

from typing import Any

from . import _constants as c
from ._scenario import Scenario
from ._state import replace, terminal
from ._terminal import USER, Terminal


def reset(scenario: dict[str, Any] | None = None) -> None:
    """A fresh terminal (account, market, history, faults), not initialized."""
    replace(Terminal(Scenario.from_mapping(scenario or {})))


def get() -> Terminal:
    """The terminal itself, for in-process tests that need more than this module."""
    return terminal()


def set_price(symbol: str, bid: float, ask: float) -> dict[str, Any]:
    """Put ``symbol`` at ``bid``/``ask`` now: one new tick; fills and stops follow."""
    t = terminal()
    t.set_price(symbol, float(bid), float(ask))
    return quote(symbol)


def quote(symbol: str) -> dict[str, Any]:
    t = terminal()
    with t.lock:
        ticks = t.history[symbol].ticks
        msc, bid, ask, *_ = ticks[-1] if ticks else (0, 0.0, 0.0)
        return {"symbol": symbol, "bid": bid, "ask": ask, "time_msc": msc}


def trade(symbol: str, price: str | float, volume: str | float, side: str = "buy") -> int:
    """One execution on the exchange now, a trade tick (``side`` the aggressor's, buy or
    sell): what an exchange-traded symbol's server reports; returns its ``time_msc``."""
    if side not in ("buy", "sell"):
        raise ValueError("side is 'buy' or 'sell'")
    return terminal().trade(symbol, float(price), float(volume), side)


def advance(seconds: float) -> float:
    """Move the clock forward (ticks, expiries and stops of the interval happen)."""
    t = terminal()
    t.advance(float(seconds))
    return t.now()


def now() -> float:
    return terminal().now()


def open_position(
    symbol: str,
    side: str,
    volume: str | float,
    *,
    sl: str | float | None = None,
    tp: str | float | None = None,
    magic: int = 0,
    comment: str = "",
    expert: bool = False,
) -> int:
    """A market order filled in the terminal by hand (or by an EA with ``expert``):
    returns the position's ticket (= its opening order's ticket)."""
    return terminal().open_by_hand(
        symbol,
        side,
        str(volume),
        sl=None if sl is None else str(sl),
        tp=None if tp is None else str(tp),
        magic=magic,
        comment=comment,
        reason=c.ORDER_REASON_EXPERT if expert else c.ORDER_REASON_CLIENT,
    )


def place_order(
    symbol: str,
    side: str,
    volume: str | float,
    type: str,
    price: str | float,
    *,
    stop_price: str | float | None = None,
    sl: str | float | None = None,
    tp: str | float | None = None,
    magic: int = 0,
    comment: str = "",
    expert: bool = False,
) -> int:
    """A pending order placed by hand: ``price`` is the limit price (the trigger of a
    stop); a stop-limit also needs ``stop_price`` (its trigger)."""
    return terminal().open_by_hand(
        symbol,
        side,
        str(volume),
        type=type,
        price=str(price),
        stop_price=None if stop_price is None else str(stop_price),
        sl=None if sl is None else str(sl),
        tp=None if tp is None else str(tp),
        magic=magic,
        comment=comment,
        reason=c.ORDER_REASON_EXPERT if expert else c.ORDER_REASON_CLIENT,
    )


def close_position(ticket: int, volume: str | float | None = None) -> None:
    terminal().close_by_hand(int(ticket), None if volume is None else str(volume))


def cancel_order(ticket: int) -> None:
    terminal().cancel_by_hand(int(ticket))


def fail_next(
    calls: int = 1,
    code: int = c.RES_E_INTERNAL_FAIL_TIMEOUT,
    message: str = "IPC timeout",
    only: list[str] | None = None,
) -> None:
    """The next ``calls`` calls (of the functions in ``only``, if given) fail with
    ``(code, message)``: -10005 IPC timeout by default."""
    t = terminal()
    with t.lock:
        f = t.faults
        f.fail_calls, f.fail_code, f.fail_message = int(calls), int(code), message
        f.fail_only = set(only or ())


def terminal_down(down: bool = True) -> None:
    """The terminal process dies (-10004 on every call) or comes back; after it comes
    back the client must ``initialize`` again, as with a real terminal."""
    t = terminal()
    with t.lock:
        t.faults.terminal_down = bool(down)
        if down:
            t.initialized = False


def disconnect(disconnected: bool = True) -> None:
    """The terminal loses (or regains) its trade server: ``connected`` False, 10031."""
    t = terminal()
    with t.lock:
        t.faults.disconnected = bool(disconnected)


def autotrading(enabled: bool) -> None:
    """The terminal's AutoTrading button: off gives 10027 and ``trade_allowed`` False."""
    t = terminal()
    with t.lock:
        t.autotrading = bool(enabled)


def lose_answers(count: int = 1, mode: str = "timeout") -> None:
    """The next ``count`` successful ``order_send`` calls execute, then their answer is
    lost: ``None`` with -10005 ("timeout") or ``ConnectionResetError`` ("raise")."""
    if mode not in ("timeout", "raise"):
        raise ValueError("mode is 'timeout' or 'raise'")
    t = terminal()
    with t.lock:
        t.faults.lost_answers, t.faults.lost_mode = int(count), mode


def requote(count: int = 1) -> None:
    """The next ``count`` market ``order_send`` calls are answered 10004, not executed."""
    t = terminal()
    with t.lock:
        t.faults.requotes = int(count)


def market_closed(symbol: str, closed: bool = True) -> None:
    t = terminal()
    with t.lock:
        (t.faults.closed.add if closed else t.faults.closed.discard)(symbol)


def set_filling(symbol: str, mode: int) -> None:
    """``SymbolInfo.filling_mode`` bits: 1 FOK, 2 IOC."""
    t = terminal()
    with t.lock:
        t.filling[symbol] = int(mode)


def set_trade_mode(symbol: str, mode: int) -> None:
    t = terminal()
    with t.lock:
        t.trade_modes[symbol] = int(mode)


def deselect(symbol: str) -> None:
    """Take ``symbol`` out of Market Watch, as a user hiding it would."""
    t = terminal()
    with t.lock:
        t.selected.discard(symbol)


def state() -> dict[str, Any]:
    """A summary for assertions: counts, tickets, the account's money."""
    t = terminal()
    with t.lock:
        acc = t.engine.account(USER)
        return {
            "initialized": t.initialized,
            "positions": [p.ticket for p in t.engine.positions(USER)],
            "orders": [o.ticket for o in t.engine.orders(USER)],
            "deals": list(t.deals),
            "history_orders": list(t.orders_done),
            "balance": str(acc.balance),
            "equity": str(acc.equity),
            "now": t.now(),
        }
