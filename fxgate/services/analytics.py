"""A user's trading performance, worked out from their deals: seed 001's analytics updates
and seed 000's performance summary.

Pure functions, no I/O, so the channel, a REST route and a test all get the same numbers
from the same deals. Amounts stay ``Decimal`` until a payload is built; only the payloads
hold floats, rounded there once. Deals become trades in one step per deal (:func:`pair`)
and a period's figures are a fold over its trades (:class:`Tally`), so that
``trade_history`` can follow each new deal instead of going over the whole history again.

The choices behind the numbers, which a client comparing them with its own will want:

* A trade is a closed trade: one ``out`` deal (MT5 ``DEAL_ENTRY_OUT``). A partial close is
  a trade of its own, as in MT5's history and strategy-tester reports.
* A trade's net result is what it did to the balance: the ``out`` deal's profit,
  commission and swap, plus the charges of the ``in`` deals of the same position when
  they are among the deals given. MT5 charges commission on entry too, and a trade that
  looked profitable before its entry commission was not. Each ``in`` deal is charged to
  the first ``out`` deal of its position that follows it, so a position closed in parts
  pays its entry commission once; an ``in`` deal of a position still open is not a trade
  yet and counts nowhere.
* A breakeven trade (net exactly zero) is neither profitable nor losing, but it is a
  trade: it lowers the win rate.
* ``gross_loss`` and ``largest_loss`` are negative, as in MT5's reports.
* The equity curve is ``initial_balance`` plus the net results of all the trades given,
  in time order; it is a closed-trade curve (floating profit is not on it). A period sees
  the part of the curve from the equity it started with to its last trade, measured
  against the running peak of the whole curve: a day that starts in a drawdown reports
  that drawdown even before it trades.
* Periods are UTC calendar periods: a trade belongs to the period in which it closed,
  even when its position opened earlier.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from fxgate.domain.money import ZERO, quantum, round_money
from fxgate.domain.timefmt import iso_ms
from fxgate.domain.trading import Deal, DealEntry

#: The periods seed 001's ``period`` field takes.
PERIODS: Final = ("DAY", "WEEK", "MONTH", "ALL")

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One trade as the numbers need it and no more, so that a long history fits in memory
    (``trade_history``): when its ``out`` deal closed it, that deal's ticket (which orders
    trades of the same second) and its net result (entry charges included, see the
    module)."""

    time: float
    ticket: int
    net: Decimal


@dataclass(frozen=True, slots=True)
class Performance:
    """Performance over one period, in the account currency; ratios are fractions (0..1).

    ``profit_factor`` is ``None`` when there is no loss to divide by (no trades, or only
    wins and breakevens): infinity is not JSON, and a made-up number would mislead.
    ``max_drawdown`` is a fraction of the running peak; ``current_drawdown`` is an amount,
    from the peak of the whole curve to its last point, so it is the same in every period.
    """

    total_trades: int
    profitable_trades: int
    losing_trades: int
    win_rate: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    profit_factor: Decimal | None
    net_profit: Decimal
    average_profit: Decimal
    largest_win: Decimal
    largest_loss: Decimal
    max_drawdown: Decimal
    current_drawdown: Decimal

    @property
    def breakeven_trades(self) -> int:
        return self.total_trades - self.profitable_trades - self.losing_trades


def check_period(period: str) -> str:
    """The period itself, or a ValueError naming the valid ones: the message a client sees
    when it asks for a period that does not exist."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}: choose one of {', '.join(PERIODS)}")
    return period


def period_start(period: str, now: float) -> float | None:
    """Epoch seconds at which ``period`` began (``None`` for ``ALL``).

    Calendar periods in UTC (the day since 00:00, the week since Monday 00:00, the month
    since the 1st), not rolling windows, so every client and every process draws the same
    line, as candles are aligned to UTC.
    """
    check_period(period)
    if period == "ALL":
        return None
    today = datetime.fromtimestamp(now, UTC).date()
    if period == "WEEK":
        start = today - timedelta(days=today.weekday())
    elif period == "MONTH":
        start = today.replace(day=1)
    else:
        start = today
    return datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()


def closed_trades(deals: Sequence[Deal]) -> list[ClosedTrade]:
    """The trades in ``deals``, oldest first, each charged its position's entry deals.

    Sorted by time and then ticket, because a store or a broker may hand deals over in any
    order, and tickets break ties between deals of the same second in execution order.
    """
    pending: dict[int, Decimal] = {}
    trades: list[ClosedTrade] = []
    for deal in sorted(deals, key=deal_order):
        trade = pair(deal, pending)
        if trade is not None:
            trades.append(trade)
    return trades


def deal_order(deal: Deal) -> tuple[float, int]:
    """The order deals are paired in: time, then ticket."""
    return (deal.time, deal.ticket)


def pair(deal: Deal, pending: dict[int, Decimal]) -> ClosedTrade | None:
    """One step of :func:`closed_trades`, for a caller that gets deals one at a time in
    :func:`deal_order`: an ``in`` deal's charges wait in ``pending`` (by position) for the
    next ``out`` deal of its position, which takes them into its trade."""
    position = deal.position_ticket
    if deal.entry is DealEntry.IN:
        pending[position] = pending.get(position, ZERO) + deal.net
        return None
    return ClosedTrade(deal.time, deal.ticket, deal.net + pending.pop(position, ZERO))


def _drawdown(peak: Decimal, equity: Decimal) -> Decimal:
    # With no positive peak there is no capital to lose a fraction of.
    return (peak - equity) / peak if peak > 0 else ZERO


def performance(
    trades: Sequence[ClosedTrade],
    *,
    initial_balance: Decimal,
    now: float,
    period: str = "ALL",
) -> Performance:
    """The performance of the trades that closed in ``period`` (as of ``now``).

    ``trades`` should be all of the account's trades (:func:`closed_trades` of all its
    deals), not only the period's: the trades before the period place its part of the
    equity curve, and an entry deal before the period still charges its commission to a
    trade closed in it.
    """
    return tally(trades, initial_balance, period_start(period, now)).performance()


def performances(
    trades: Sequence[ClosedTrade],
    *,
    initial_balance: Decimal,
    now: float,
    periods: Sequence[str] = PERIODS,
) -> dict[str, Performance]:
    """:func:`performance` for several periods."""
    return {
        p: performance(trades, initial_balance=initial_balance, now=now, period=p) for p in periods
    }


@dataclass(frozen=True, slots=True)
class Tally:
    """The running figures of one period: a fold over its trades in time order.

    A fold, so that a period's performance can follow a new trade in constant time
    (:meth:`add`) instead of a pass over the whole history: ``trade_history`` keeps one
    per period and user, and :func:`tally` gives the same fold from scratch.
    """

    equity: Decimal
    peak: Decimal
    max_drawdown: Decimal
    total: int = 0
    profitable: int = 0
    losing: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO
    largest_win: Decimal = ZERO
    largest_loss: Decimal = ZERO

    @classmethod
    def opening(cls, equity: Decimal, peak: Decimal) -> Tally:
        """A period with no trade yet, which opens with the curve at ``equity`` and the
        peak so far at ``peak``: already in that drawdown."""
        return cls(equity, peak, _drawdown(peak, equity))

    def add(self, net: Decimal) -> Tally:
        """The figures after one more trade, closed after every trade so far."""
        equity = self.equity + net
        peak = max(self.peak, equity)
        won, lost = net > 0, net < 0
        return Tally(
            equity=equity,
            peak=peak,
            max_drawdown=max(self.max_drawdown, _drawdown(peak, equity)),
            total=self.total + 1,
            profitable=self.profitable + won,
            losing=self.losing + lost,
            gross_profit=self.gross_profit + net if won else self.gross_profit,
            gross_loss=self.gross_loss + net if lost else self.gross_loss,
            largest_win=max(self.largest_win, net) if won else self.largest_win,
            largest_loss=min(self.largest_loss, net) if lost else self.largest_loss,
        )

    def performance(self) -> Performance:
        total, gross_profit, gross_loss = self.total, self.gross_profit, self.gross_loss
        net_profit = gross_profit + gross_loss
        return Performance(
            total_trades=total,
            profitable_trades=self.profitable,
            losing_trades=self.losing,
            win_rate=Decimal(self.profitable) / total if total else ZERO,
            gross_profit=gross_profit,
            gross_loss=gross_loss,
            profit_factor=gross_profit / -gross_loss if self.losing else None,
            net_profit=net_profit,
            average_profit=net_profit / total if total else ZERO,
            largest_win=self.largest_win,
            largest_loss=self.largest_loss,
            max_drawdown=self.max_drawdown,
            current_drawdown=self.peak - self.equity,
        )


def tally(trades: Sequence[ClosedTrade], initial_balance: Decimal, since: float | None) -> Tally:
    """The figures of the trades (in time order) closed at or after ``since``, all of them
    when it is ``None``; the trades before it only move the curve."""
    first = 0 if since is None else bisect_left(trades, since, key=_closed_at)
    equity = peak = initial_balance
    for trade in trades[:first]:
        equity += trade.net
        peak = max(peak, equity)
    figures = Tally.opening(equity, peak)
    for trade in trades[first:]:
        figures = figures.add(trade.net)
    return figures


def _closed_at(trade: ClosedTrade) -> float:
    return trade.time


# ---------------------------------------------------------------------------------------
# Payloads


def _num(value: Decimal, places: int) -> float:
    """Round half away from zero, as MT5 shows numbers; a float's own ``round`` would
    turn 0.125 into 0.12."""
    return float(value.quantize(quantum(places), rounding=ROUND_HALF_UP))


def _money(value: Decimal, currency: str) -> float:
    """``+ 0.0`` drops the sign of a loss that rounds to nothing, which JSON shows as -0.0."""
    return float(round_money(value, currency)) + 0.0


def seed001_payload(
    perf: Performance, period: str, now: float, *, currency: str = "USD"
) -> dict[str, Any]:
    """The ``data`` of seed 001's analytics message (``PERFORMANCE_UPDATE``).

    Seed 001 shows ``winRate`` as a percentage with one decimal (66.7), so ``maxDrawdown``,
    the other ratio, is a percentage too (two decimals, as the terminal shows ratios);
    ``currentDrawdown`` is an amount (25.0). Amounts are rounded to the currency's minor
    unit. ``profitFactor`` is ``null`` when there were no losses.
    """
    pf = perf.profit_factor
    return {
        "type": "PERFORMANCE_UPDATE",
        "period": check_period(period),
        "metrics": {
            "totalTrades": perf.total_trades,
            "winRate": _num(perf.win_rate * _HUNDRED, 1),
            "netProfit": _money(perf.net_profit, currency),
            "currentDrawdown": _money(perf.current_drawdown, currency),
            "profitFactor": None if pf is None else _num(pf, 2),
            "averageProfit": _money(perf.average_profit, currency),
            "grossProfit": _money(perf.gross_profit, currency),
            "grossLoss": _money(perf.gross_loss, currency),
            "maxDrawdown": _num(perf.max_drawdown * _HUNDRED, 2),
        },
        "timestamp": iso_ms(now),
    }


def seed000_summary(perf: Performance, *, currency: str = "USD") -> dict[str, Any]:
    """Seed 000's ``performance_summary``, its field names exactly.

    Ratios are fractions there (``win_rate`` 0.72, ``max_drawdown`` 0.08); the drawdown
    keeps four places so that a drawdown under one percent does not read as zero.
    """
    pf = perf.profit_factor
    return {
        "win_rate": _num(perf.win_rate, 2),
        "profit_factor": None if pf is None else _num(pf, 2),
        "total_trades": perf.total_trades,
        "profitable_trades": perf.profitable_trades,
        "average_profit": _money(perf.average_profit, currency),
        "max_drawdown": _num(perf.max_drawdown, 4),
    }
