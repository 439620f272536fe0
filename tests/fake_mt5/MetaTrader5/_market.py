"""Tick history and bars for the fake terminal: what ``copy_ticks_*`` and ``copy_rates_*``
read.

Ticks are kept as the simulator (or a test) produced them, with ``time_msc`` strictly
increasing per symbol so that "every tick since the last ``time_msc``" is well defined.
Bars: M1 bars are built from the live ticks; longer timeframes aggregate them. Before the
fake started there was no market, so each (symbol, timeframe) gets a deterministic
synthetic past (a seeded random walk ending at the first live price) of ``history_bars``
bars: enough for charts, not consistent across timeframes.
"""

from __future__ import annotations

import calendar
import math
import random
import time as _time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import numpy as np

from . import _constants as c

#: The real package's dtypes (``copy_rates_*`` and ``copy_ticks_*``).
RATES_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("tick_volume", "<u8"),
        ("spread", "<i4"),
        ("real_volume", "<u8"),
    ]
)
TICKS_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),
        ("flags", "<u4"),
        ("volume_real", "<f8"),
    ]
)

_MINUTES = {getattr(c, f"TIMEFRAME_M{m}"): m * 60 for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)}
_HOURS = {getattr(c, f"TIMEFRAME_H{h}"): h * 3600 for h in (1, 2, 3, 4, 6, 8, 12)}
SECONDS: dict[int, int] = {
    **_MINUTES,
    **_HOURS,
    c.TIMEFRAME_D1: 86_400,
    c.TIMEFRAME_W1: 7 * 86_400,
    c.TIMEFRAME_MN1: 30 * 86_400,  # nominal; bars start on the 1st of each month
}
_MSC = itemgetter(0)
_SUNDAY = 3 * 86_400  # 1970-01-04 was a Sunday: MT5's weekly bars start on Sundays


def to_seconds(value: Any) -> float:
    """A ``date_from``/``date_to`` argument in epoch seconds: a datetime (a naive one is
    taken as UTC, as the package's docs ask callers to use UTC) or a number of seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return calendar.timegm(value.timetuple()) + value.microsecond / 1e6
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("date must be a datetime or a number of seconds")
    return float(value)


def bar_start(ts: int, timeframe: int) -> int:
    if timeframe == c.TIMEFRAME_MN1:
        t = _time.gmtime(ts)
        return calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    if timeframe == c.TIMEFRAME_W1:
        return (ts - _SUNDAY) // SECONDS[timeframe] * SECONDS[timeframe] + _SUNDAY
    step = SECONDS[timeframe]
    return ts // step * step


@dataclass(slots=True)
class SymbolHistory:
    digits: int
    max_ticks: int
    seed: str
    #: ``(time_msc, bid, ask, flags, last, volume_real)``; a trade tick carries
    #: ``TICK_FLAG_LAST``/``VOLUME`` and the side, with bid and ask as they stood
    ticks: list[tuple[int, float, float, int, float, float]] = field(default_factory=list)
    m1: list[list[float]] = field(default_factory=list)  # time, o, h, l, c, vol, spread
    last_msc: int = 0
    last_bid: float = 0.0
    last_ask: float = 0.0
    last_price: float = 0.0  # the last execution's price, carried by every later tick
    past: dict[int, list[tuple[int, float, float, float, float, int, int]]] = field(
        default_factory=dict
    )

    def add(self, ts: float, bid: float, ask: float) -> tuple[int, int]:
        """Record one tick; returns its ``(time_msc, flags)``."""
        msc = max(int(ts * 1000), self.last_msc + 1)
        flags = (c.TICK_FLAG_BID if bid != self.last_bid else 0) | (
            c.TICK_FLAG_ASK if ask != self.last_ask else 0
        )
        self.last_msc, self.last_bid, self.last_ask = msc, bid, ask
        self._append((msc, bid, ask, flags, self.last_price, 0.0))
        spread = round((ask - bid) * 10**self.digits)
        minute = msc // 60_000 * 60
        bars = self.m1
        if bars and bars[-1][0] == minute:
            bar = bars[-1]
            bar[2] = max(bar[2], bid)
            bar[3] = min(bar[3], bid)
            bar[4] = bid
            bar[5] += 1
            bar[6] = spread
        else:
            bars.append([minute, bid, bid, bid, bid, 1, spread])
        return msc, flags

    def trade(self, ts: float, price: float, volume: float, side: str) -> int:
        """Record one execution on the exchange (a trade tick: ``last`` and
        ``volume_real``, the aggressor's side in the flags); returns its ``time_msc``."""
        msc = max(int(ts * 1000), self.last_msc + 1)
        flags = c.TICK_FLAG_LAST | c.TICK_FLAG_VOLUME
        flags |= c.TICK_FLAG_BUY if side == "buy" else c.TICK_FLAG_SELL
        self.last_msc, self.last_price = msc, price
        self._append((msc, self.last_bid, self.last_ask, flags, price, volume))
        return msc

    def _append(self, tick: tuple[int, float, float, int, float, float]) -> None:
        self.ticks.append(tick)
        if len(self.ticks) > 2 * self.max_ticks:  # amortised: the terminal's tick cache
            del self.ticks[: self.max_ticks]

    def ticks_between(
        self, from_msc: int, to_msc: int, count: int | None, flags: int = c.COPY_TICKS_ALL
    ) -> np.ndarray:
        """``copy_ticks_*``: ``COPY_TICKS_INFO`` keeps the ticks that moved bid or ask,
        ``COPY_TICKS_TRADE`` the executions, ``COPY_TICKS_ALL`` every tick; ``count``
        applies after the filter, as in MT5."""
        lo = bisect_left(self.ticks, from_msc, key=_MSC)
        hi = bisect_right(self.ticks, to_msc, key=_MSC)
        ticks = self.ticks[lo:hi]
        if flags != c.COPY_TICKS_ALL:
            want = (
                c.TICK_FLAG_LAST | c.TICK_FLAG_VOLUME
                if flags == c.COPY_TICKS_TRADE
                else c.TICK_FLAG_BID | c.TICK_FLAG_ASK
            )
            ticks = [t for t in ticks if t[3] & want]
        if count is not None:
            ticks = ticks[: max(count, 0)]
        rows = [
            (msc // 1000, bid, ask, last, int(vol), msc, fl, vol)
            for msc, bid, ask, fl, last, vol in ticks
        ]
        return np.array(rows, dtype=TICKS_DTYPE)

    def bars(self, timeframe: int, history_bars: int) -> list[tuple[Any, ...]]:
        """Every bar of ``timeframe``, oldest first: the synthetic past, then live ones."""
        live: list[tuple[Any, ...]] = []
        for t, o, h, lo, cl, v, s in self.m1:
            start = bar_start(int(t), timeframe)
            if live and live[-1][0] == start:
                _, o0, h0, l0, _, v0, _ = live[-1]
                live[-1] = (start, o0, max(h0, h), min(l0, lo), cl, v0 + v, s)
            else:
                live.append((start, o, h, lo, cl, v, s))
        if not live:
            return []
        return [*self._past(timeframe, live[0], history_bars), *live]

    def _past(
        self, timeframe: int, first: tuple[Any, ...], count: int
    ) -> list[tuple[int, float, float, float, float, int, int]]:
        cached = self.past.get(timeframe)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:{timeframe}")
        step = SECONDS[timeframe]
        sigma = 0.006 * math.sqrt(step / 86_400)
        scale = 10**self.digits
        out: list[tuple[int, float, float, float, float, int, int]] = []
        close = float(first[1])
        t = int(first[0])
        for _ in range(count):
            t = bar_start(t - 1, timeframe)
            op = close * math.exp(-rng.gauss(0.0, sigma))
            hi = max(op, close) * math.exp(abs(rng.gauss(0.0, sigma / 3)))
            lo = min(op, close) * math.exp(-abs(rng.gauss(0.0, sigma / 3)))
            out.append(
                (
                    t,
                    round(op * scale) / scale,
                    round(hi * scale) / scale,
                    round(lo * scale) / scale,
                    round(close * scale) / scale,
                    1 + int(rng.expovariate(1 / (step / 3))),
                    int(first[6]),
                )
            )
            close = op
        out.reverse()
        self.past[timeframe] = out
        return out


def rates_array(rows: list[tuple[Any, ...]]) -> np.ndarray:
    return np.array([(*r, 0) for r in rows], dtype=RATES_DTYPE)
