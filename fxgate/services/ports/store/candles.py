"""The candles area: closed OHLC bars of the live quotes, for ``GET /market/data``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from fxgate.services.ports.store.records import Candle


class CandleStore(Protocol):
    async def upsert(self, candles: Sequence[Candle]) -> None:
        """Insert or replace the bars at their (symbol, interval, open_time), in one
        round trip (a flush of the recorder, a history backfill)."""
        ...

    async def latest(
        self,
        symbol: str,
        interval: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """The latest ``limit`` bars with ``start <= open_time < end``, oldest first
        (the order a chart draws them in)."""
        ...
