"""OHLC candles built from the quote stream, for charts and the store.

Buckets are aligned to the UTC epoch, so every interval's boundaries are the same in
every process and after a restart: a 1h candle opens on the hour, a 4h candle at 00:00,
04:00, 08:00... UTC, and a 1d candle at 00:00 UTC (not at the feed's 22:00 trading-day
rollover). Prices are bids, as MetaTrader charts them; volume is the sum of the ticks'
volumes.

A candle closes when the first quote of a later bucket arrives, not when the clock passes
the boundary: a builder knows only the quotes it is given, and a symbol that does not
tick (closed market) leaves no empty candles behind. A quote older than the open candle
of an interval (out of order) cannot change a closed candle and is ignored for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from fxgate.domain.market import Quote

#: Interval names and their length in seconds.
INTERVALS: Final[Mapping[str, int]] = MappingProxyType(
    {"1m": 60, "5m": 300, "15m": 900, "1h": 3_600, "4h": 14_400, "1d": 86_400}
)


def interval_seconds(interval: str) -> int:
    """The length of ``interval``, or a ValueError naming the valid ones: the message a
    client sees when it asks for an interval that does not exist."""
    try:
        return INTERVALS[interval]
    except KeyError:
        choices = ", ".join(INTERVALS)
        raise ValueError(f"unknown interval {interval!r}: choose one of {choices}") from None


@dataclass(frozen=True, slots=True)
class Candle:
    """One bar. ``open_time`` is the bucket's start in epoch seconds; ``closed`` is False
    while the bucket can still change."""

    symbol: str
    interval: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    closed: bool

    @property
    def close_time(self) -> int:
        """The end of the bucket (exclusive): the next candle's ``open_time``."""
        return self.open_time + INTERVALS[self.interval]

    def to_record(self) -> dict[str, object]:
        """The candle as a plain dict with the field names, for stores and encoders."""
        return {
            "symbol": self.symbol,
            "interval": self.interval,
            "open_time": self.open_time,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "closed": self.closed,
        }


class _Bar:
    """The open candle of one (symbol, interval): mutable, so a tick allocates nothing."""

    __slots__ = ("close", "high", "low", "open", "open_time", "volume")

    def __init__(self, open_time: int, price: float, volume: int) -> None:
        self.open_time = open_time
        self.open = self.high = self.low = self.close = price
        self.volume = volume

    def freeze(self, symbol: str, interval: str, closed: bool) -> Candle:
        return Candle(
            symbol,
            interval,
            self.open_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            closed,
        )


class CandleBuilder:
    """Turns quotes into candles for a set of intervals (all of ``INTERVALS`` by default)."""

    def __init__(self, intervals: Iterable[str] = INTERVALS) -> None:
        self._intervals = tuple((name, interval_seconds(name)) for name in intervals)
        self._bars: dict[str, dict[str, _Bar]] = {}

    @property
    def intervals(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._intervals)

    def update(self, quote: Quote) -> list[Candle]:
        """Add a quote; return the candles it closed (at most one per interval, shortest
        interval first)."""
        bars = self._bars.get(quote.symbol)
        if bars is None:
            bars = self._bars[quote.symbol] = {}
        price = quote.bid
        volume = quote.volume
        ts = int(quote.ts)
        closed: list[Candle] = []
        for name, seconds in self._intervals:
            open_time = ts - ts % seconds
            bar = bars.get(name)
            if bar is None:
                bars[name] = _Bar(open_time, price, volume)
            elif open_time == bar.open_time:
                if price > bar.high:
                    bar.high = price
                elif price < bar.low:
                    bar.low = price
                bar.close = price
                bar.volume += volume
            elif open_time > bar.open_time:
                closed.append(bar.freeze(quote.symbol, name, closed=True))
                bars[name] = _Bar(open_time, price, volume)
        return closed

    def current(self, symbol: str, interval: str) -> Candle | None:
        """The open candle of ``symbol`` for ``interval``, or None before its first quote."""
        interval_seconds(interval)
        bar = self._bars.get(symbol, {}).get(interval)
        return bar.freeze(symbol, interval, closed=False) if bar is not None else None
