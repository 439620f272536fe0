"""What runs in the worker thread: each function is one hop to the terminal's owner.

A job takes the worker's :class:`~.terminal.Calls` and groups the calls one step needs
(connecting, one poll, the look-up after a lost answer), so the event loop pays one
thread hop per step, not one per call. Jobs return plain dicts; a "not found" answer
(``None`` with a non-IPC ``last_error``) is an empty result, and a lost terminal raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fxgate.brokers.mt5.sync import Snapshot
from fxgate.brokers.mt5.terminal import Calls, TerminalError

log = logging.getLogger(__name__)

Row = dict[str, Any]
#: Server clocks run ahead of UTC (the trade server's time zone): read up to this far on.
_AHEAD = timedelta(days=2)


def many(c: Calls, name: str, *args: Any, **kwargs: Any) -> list[Row]:
    """A list answer; ``None`` with "not found" (or nothing) is an empty list."""
    try:
        rows = c(name, *args, **kwargs)
    except TerminalError as exc:
        if exc.lost:
            raise
        return []
    return list(rows or [])


def maybe(c: Calls, name: str, *args: Any) -> Any:
    """One answer, or ``None`` when the terminal has none (not a lost terminal)."""
    try:
        return c(name, *args)
    except TerminalError as exc:
        if exc.lost:
            raise
        return None


def connect(c: Calls, kwargs: dict[str, Any], wanted: list[str]) -> tuple[Row, Row, list[Row]]:
    """``initialize``, then the terminal, the account, and the symbols to stream (the
    Market Watch when none are named), each selected into the Market Watch."""
    c("initialize", **kwargs)
    term = c("terminal_info")
    acc = c("account_info")
    names = wanted or [s["name"] for s in c("symbols_get") if s.get("visible", True)]
    infos = []
    for name in names:
        info = maybe(c, "symbol_info", name)
        if info is None:
            log.warning("mt5 symbol not found", extra={"symbol": name})
            continue
        if not info.get("visible", True):
            c("symbol_select", name, True)
        infos.append(info)
    return term, acc, infos


def select(c: Calls, name: str) -> Row | None:
    """A symbol's specification, selected into the Market Watch before use."""
    info: Row | None = maybe(c, "symbol_info", name)
    if info is not None and not info.get("visible", True):
        c("symbol_select", name, True)
    return info


def read_state(c: Calls, deals_since: float) -> Snapshot:
    """One trade poll: account, terminal, positions, pending orders, recent deals."""
    since = datetime.fromtimestamp(deals_since, UTC)
    return Snapshot(
        account=c("account_info"),
        terminal=c("terminal_info"),
        positions=many(c, "positions_get"),
        orders=many(c, "orders_get"),
        deals=many(c, "history_deals_get", since, datetime.now(UTC) + _AHEAD),
    )


def read_history(c: Calls, tickets: Iterable[int]) -> dict[int, Row]:
    """The final state of orders that left the terminal's pending list."""
    out = {}
    for t in tickets:
        rows = many(c, "history_orders_get", ticket=t)
        if rows:
            out[t] = rows[0]
    return out


def find_request(c: Calls, comment: str, magic: int, lookback: timedelta) -> int | None:
    """The ticket of the order a request with this comment token made, pending or done,
    or ``None``: what decides, after a lost answer, that the order was not sent."""
    for row in many(c, "orders_get"):
        if row.get("comment") == comment and int(row.get("magic", -1)) == magic:
            return int(row["ticket"])
    now = datetime.now(UTC)
    for row in many(c, "history_orders_get", now - lookback, now + _AHEAD):
        if row.get("comment") == comment and int(row.get("magic", -1)) == magic:
            return int(row["ticket"])
    return None


def book(c: Calls, symbol: str) -> list[Row]:
    c("market_book_add", symbol)
    return many(c, "market_book_get", symbol)


def rates(
    c: Calls, symbol: str, timeframe: int, start: datetime | None, end: datetime | None, limit: int
) -> list[Row]:
    if start is None and end is None:
        return many(c, "copy_rates_from_pos", symbol, timeframe, 0, limit)
    lo = start or datetime.fromtimestamp(0, UTC)
    hi = end or datetime.now(UTC) + _AHEAD
    return many(c, "copy_rates_range", symbol, timeframe, lo, hi)
