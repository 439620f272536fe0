"""The candles area on MongoDB: ``candles``, unique per (symbol, interval, open_time)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from fxgate.services.ports.store.records import Candle
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, translating_errors
from fxgate.store.rules import check_paging, utc

#: How many single-document upserts a bulk call keeps in flight at once.
_CONCURRENT_WRITES = 32


@translating_errors
class MongoCandles:
    """``CandleStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def upsert(self, candles: Sequence[Candle]) -> None:
        coll = self._m.c("candles")

        async def upsert(c: Candle) -> None:
            key = {"symbol": c.symbol, "interval": c.interval, "open_time": utc(c.open_time)}
            bar = {"open": c.open, "high": c.high, "low": c.low, "close": c.close}
            for attempt in range(2):  # two writers inserting one new bar: retry as update
                try:
                    await coll.update_one(key, {"$set": {**bar, "volume": c.volume}}, upsert=True)
                    return
                except DuplicateKeyError:
                    if attempt:
                        raise

        # Single-document upserts kept in flight together instead of bulk_write,
        # which mongomock cannot run; on a real server the cost is similar.
        for i in range(0, len(candles), _CONCURRENT_WRITES):
            await asyncio.gather(*(upsert(c) for c in candles[i : i + _CONCURRENT_WRITES]))

    async def latest(
        self,
        symbol: str,
        interval: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        check_paging(0, limit)
        if limit == 0:
            return []
        query: dict[str, Any] = {"symbol": symbol, "interval": interval}
        if bounds := docs.range_query(start, end):
            query["open_time"] = bounds
        cursor = self._m.c("candles").find(query, sort=[("open_time", DESCENDING)], limit=limit)
        return [docs.candle_from(d) for d in reversed(await cursor.to_list(None))]
