"""What runs in the worker that owns the terminal: each job is one hop to it.

A job takes the worker's :class:`~.terminal.Calls` and groups the calls one step needs
(connecting, one poll, the look-up after a lost answer), so the event loop pays one hop
per step, not one per call. Jobs are named (:data:`JOBS`) and take and return plain
values only (dicts, lists, tuples, numbers, strings, datetimes), because in the default
worker they cross a pipe between two processes; a "not found" answer (``None`` with a
non-IPC ``last_error``) is an empty result, and a lost terminal raises. This module
imports nothing of fxgate above the adapter, so the worker process starts quickly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fxgate.brokers.mt5.terminal import BRIDGE_LOST, Calls, TerminalError

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


def read_state(c: Calls, deals_since: float) -> dict[str, Any]:
    """One trade poll: account, terminal, positions, pending orders, recent deals (the
    fields of :class:`~.sync.Snapshot`)."""
    since = datetime.fromtimestamp(deals_since, UTC)
    return dict(
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


def call(
    c: Calls, name: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> Any:
    """One package call."""
    return c(name, *args, **(kwargs or {}))


def calc(c: Calls, name: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """``order_calc_margin``/``_profit``: ``{"value": v}``, or ``{"error": text}`` when
    the terminal cannot compute it (a lost terminal raises)."""
    try:
        return {"value": c(name, *args)}
    except TerminalError as exc:
        if exc.lost:
            raise
        return {"error": exc.message}


COPY_TICKS_ALL = -1
MAX_TICKS = 1000
#: A symbol's tick cursor as it crosses to the worker: the last ``time_msc`` delivered,
#: how many ticks at exactly that millisecond were, and whether its tick history reads.
CursorState = tuple[int, int, bool]


def read_ticks(
    c: Calls, cursors: dict[str, CursorState]
) -> tuple[dict[str, list[Row]], dict[str, CursorState]]:
    """One tick sweep: the new ticks of each symbol, and the cursors that moved.

    Each symbol's ``copy_ticks_from`` since its last tick's second is filtered here, in
    the worker, so only new ticks cross: every tick at an earlier millisecond is
    dropped, and as many at the last millisecond as were delivered before, so a tick is
    neither lost between polls nor repeated. A symbol whose history cannot be read falls
    back to ``symbol_info_tick`` (new when its ``time_msc`` moved).

    A sweep is all or nothing: a terminal lost halfway raises, with the ticks read so
    far, and no cursor moves (the caller applies the moved cursors only with the ticks),
    so the sweep after the reconnect reads those ticks again instead of skipping them.
    """
    out: dict[str, list[Row]] = {}
    moved: dict[str, CursorState] = {}
    for symbol, (cur_msc, cur_at, history) in cursors.items():
        rows: list[Row] = []
        if cur_msc and history:
            try:
                since = datetime.fromtimestamp(cur_msc // 1000, UTC)
                rows = c("copy_ticks_from", symbol, since, MAX_TICKS, COPY_TICKS_ALL)
            except TerminalError as exc:
                if exc.lost:
                    raise
                history = False
                moved[symbol] = (cur_msc, cur_at, history)
        if not cur_msc or not history:
            try:
                tick = c("symbol_info_tick", symbol)
            except TerminalError as exc:
                if exc.lost:
                    raise
                continue
            rows = [tick] if tick.get("time_msc") and (tick.get("bid") or tick.get("ask")) else []
        fresh: list[Row] = []
        seen_at_last = 0
        for row in rows:
            msc = int(row["time_msc"])
            if msc < cur_msc:
                continue
            if msc == cur_msc:
                seen_at_last += 1
                if seen_at_last <= cur_at:
                    continue
            fresh.append(row)
        if fresh:
            last = int(fresh[-1]["time_msc"])
            same = sum(1 for r in fresh if int(r["time_msc"]) == last)
            moved[symbol] = (last, same + (cur_at if last == cur_msc else 0), history)
            out[symbol] = fresh
    return out, moved


Job = Callable[..., Any]
#: Every job a worker runs, by name: what crosses to a worker process is the name.
JOBS: dict[str, Job] = {
    f.__name__: f
    for f in (
        call,
        calc,
        maybe,
        connect,
        select,
        read_state,
        read_history,
        find_request,
        book,
        rates,
        read_ticks,
    )
}


class Owner:
    """What the worker holds: the package (built lazily, so that a bridge that is down
    fails a call, not the start-up) and the jobs run on it, one at a time."""

    def __init__(self, api_factory: Callable[[], Any]) -> None:
        self._factory = api_factory
        self._calls: Calls | None = None

    def run(self, job: str, args: tuple[Any, ...]) -> Any:
        if self._calls is None:
            try:
                self._calls = Calls(self._factory())
            except Exception as exc:
                raise TerminalError(
                    BRIDGE_LOST, f"{type(exc).__name__}: {exc}", "connect"
                ) from None
        return JOBS[job](self._calls, *args)

    def forget(self) -> None:
        self._calls = None
