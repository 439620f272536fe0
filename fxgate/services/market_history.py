"""Candles from the live quotes, kept in the store, served to ``GET /market/data``.

The recorder sits on the quote path, so :meth:`CandleRecorder.on_quote` only updates
the in-memory :class:`~fxgate.services.candles.CandleBuilder` and queues closed candles;
a background task writes them in one batch every ``flush_interval`` seconds, together
with a snapshot of the candles still open (every ``snapshot_every`` flushes), so that a
restart loses at most a few seconds of the current bars.

After a restart the builder starts empty, and the first quote of a bucket that was
already partly recorded would open a fresh bar. The recorder therefore reads the last
stored bar of each series at start and merges it into the live bar of the same bucket
(first open, highest high, lowest low, summed volume) before writing or serving it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from fxgate.domain.market import Quote
from fxgate.services.candles import INTERVALS, CandleBuilder
from fxgate.services.candles import Candle as LiveCandle
from fxgate.services.ports.store.candles import CandleStore
from fxgate.services.ports.store.records import Candle

log = logging.getLogger(__name__)

#: Closed candles kept in memory while the store is unreachable, before dropping the oldest.
MAX_PENDING = 50_000


def _price(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _record(bar: LiveCandle, digits: int) -> Candle:
    return Candle(
        symbol=bar.symbol,
        interval=bar.interval,
        open_time=datetime.fromtimestamp(bar.open_time, UTC),
        open=_price(bar.open, digits),
        high=_price(bar.high, digits),
        low=_price(bar.low, digits),
        close=_price(bar.close, digits),
        volume=str(bar.volume),
    )


def merge(earlier: Candle, later: Candle) -> Candle:
    """One bar from two partial records of the same bucket, ``earlier`` first."""
    return Candle(
        symbol=later.symbol,
        interval=later.interval,
        open_time=later.open_time,
        open=earlier.open,
        high=max(earlier.high, later.high, key=Decimal),
        low=min(earlier.low, later.low, key=Decimal),
        close=later.close,
        volume=str(Decimal(earlier.volume) + Decimal(later.volume)),
    )


@dataclass(frozen=True, slots=True)
class _Series:
    symbol: str
    interval: str


class CandleRecorder:
    def __init__(
        self,
        store: CandleStore,
        *,
        intervals: Iterable[str] = INTERVALS,
        flush_interval: float = 1.0,
        snapshot_every: int = 5,
    ) -> None:
        self.store = store
        self.builder = CandleBuilder(intervals)
        self.flush_interval = flush_interval
        self.snapshot_every = max(1, snapshot_every)
        self._pending: list[Candle] = []
        self._dirty: set[str] = set()
        self._digits: dict[str, int] = {}
        #: The last stored bar of each series at start-up, until its bucket is over.
        self._carried: dict[_Series, Candle] = {}
        self._flushes = 0

    # -- the quote path (synchronous, no I/O) ------------------------------------------

    def on_quote(self, quote: Quote) -> None:
        self._digits[quote.symbol] = quote.digits
        for bar in self.builder.update(quote):
            self._pending.append(self._with_carried(_record(bar, quote.digits)))
        self._dirty.add(quote.symbol)
        if len(self._pending) > MAX_PENDING:
            del self._pending[: len(self._pending) - MAX_PENDING]
            log.warning("candle backlog full: dropping the oldest closed candles")

    def _with_carried(self, record: Candle) -> Candle:
        key = _Series(record.symbol, record.interval)
        carried = self._carried.get(key)
        if carried is None:
            return record
        if carried.open_time == record.open_time:
            return merge(carried, record)
        if carried.open_time < record.open_time:
            del self._carried[key]  # its bucket is over: the live bar is the whole story
        return record

    # -- persistence --------------------------------------------------------------------

    async def load(self, symbols: Iterable[str]) -> None:
        """Read the newest stored bar of every series, to continue it after a restart."""
        for symbol in symbols:
            for interval in self.builder.intervals:
                last = await self.store.latest(symbol, interval, limit=1)
                if last:
                    self._carried[_Series(symbol, interval)] = last[-1]

    def _open_bars(self, symbols: Iterable[str]) -> list[Candle]:
        out = []
        for symbol in symbols:
            for interval in self.builder.intervals:
                bar = self.builder.current(symbol, interval)
                if bar is not None:
                    out.append(self._with_carried(_record(bar, self._digits.get(symbol, 5))))
        return out

    async def flush(self, *, snapshot: bool | None = None) -> int:
        """Write queued closed candles (and, when due, the open ones); returns how many.

        A failed write keeps the batch for the next flush: the quote path never waits.
        """
        self._flushes += 1
        if snapshot is None:
            snapshot = self._flushes % self.snapshot_every == 0
        batch, self._pending = self._pending, []
        if snapshot and self._dirty:
            dirty, self._dirty = self._dirty, set()
            batch.extend(self._open_bars(dirty))
        if not batch:
            return 0
        try:
            await self.store.upsert(batch)
        except Exception:
            log.exception("could not store candles; retrying at the next flush")
            self._pending[:0] = batch  # upserts: writing one twice is harmless
            return 0
        return len(batch)

    async def record(self, symbols: Iterable[str]) -> None:
        """The recorder's task: continue the stored bars, then flush until cancelled.

        The node subscribes :meth:`on_quote` to the feed when it is assembled, before
        this runs, so quotes that arrive while the last bars load are not lost.
        """
        try:
            await self.load(symbols)
        except Exception:
            log.exception("could not read the last candles; starting fresh bars")
        await self.run()

    async def run(self) -> None:
        """Flush periodically until cancelled, then once more (with the open bars)."""
        try:
            while True:
                await asyncio.sleep(self.flush_interval)
                await self.flush()
        finally:
            try:
                await self.flush(snapshot=True)
            except Exception:
                log.exception("final candle flush failed")

    # -- reading ------------------------------------------------------------------------

    def current(self, symbol: str, interval: str) -> Candle | None:
        """The open bar of a series, continued from before a restart if need be."""
        bar = self.builder.current(symbol, interval)
        if bar is None:
            carried = self._carried.get(_Series(symbol, interval))
            return carried
        return self._with_carried(_record(bar, self._digits.get(symbol, 5)))

    async def query(
        self,
        symbol: str,
        interval: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
    ) -> list[Candle]:
        """Up to ``limit`` bars, oldest first: the stored ones, with the live open bar in
        place of its last snapshot (and closed bars not yet flushed)."""
        return await query_candles(self.store, self, symbol, interval, start, end, limit)

    def unflushed(self, symbol: str, interval: str) -> list[Candle]:
        return [c for c in self._pending if c.symbol == symbol and c.interval == interval]


async def query_candles(
    store: CandleStore,
    recorder: CandleRecorder | None,
    symbol: str,
    interval: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[Candle]:
    """Stored bars merged with what the recorder (if any) holds in memory."""
    stored = await store.latest(symbol, interval, start=start, end=end, limit=limit)
    if recorder is None:
        return stored
    bars = {c.open_time: c for c in stored}
    live = [*recorder.unflushed(symbol, interval)]
    current = recorder.current(symbol, interval)
    if current is not None:
        live.append(current)
    for c in live:
        if (start is None or c.open_time >= start) and (end is None or c.open_time < end):
            bars[c.open_time] = c
    return [bars[t] for t in sorted(bars)][-limit:] if limit else []
