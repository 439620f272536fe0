"""The candles area on SQLite: the ``candles`` table, unique per (symbol, interval, open_time)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fxgate.services.ports.store.records import Candle
from fxgate.store.rules import check_paging
from fxgate.store.sqlite.tx import parse_ts, range_clause, ts, write_tx
from fxgate.store.sqlite.worker import Worker


def upsert_candles(conn: sqlite3.Connection, candles: Sequence[Candle]) -> None:
    with write_tx(conn):
        conn.executemany(
            "INSERT INTO candles (symbol, interval, open_time, open, high, low, close, volume)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (symbol, interval, open_time) DO UPDATE SET open = excluded.open,"
            " high = excluded.high, low = excluded.low, close = excluded.close,"
            " volume = excluded.volume",
            [
                (c.symbol, c.interval, ts(c.open_time), c.open, c.high, c.low, c.close, c.volume)
                for c in candles
            ],
        )


def list_candles(
    conn: sqlite3.Connection,
    symbol: str,
    interval: str,
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[Candle]:
    check_paging(0, limit)
    where = ["symbol = ?", "interval = ?"]
    args: list[Any] = [symbol, interval]
    range_clause("open_time", start, end, where, args)
    rows = conn.execute(
        f"SELECT * FROM candles WHERE {' AND '.join(where)} ORDER BY open_time DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [
        Candle(
            symbol=r["symbol"],
            interval=r["interval"],
            open_time=parse_ts(r["open_time"]),
            open=r["open"],
            high=r["high"],
            low=r["low"],
            close=r["close"],
            volume=r["volume"],
        )
        for r in reversed(rows)
    ]


class SQLiteCandles:
    """``CandleStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def upsert(self, candles: Sequence[Candle]) -> None:
        await self._w.run(upsert_candles, list(candles))

    async def latest(
        self,
        symbol: str,
        interval: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        return await self._w.run(list_candles, symbol, interval, start=start, end=end, limit=limit)
