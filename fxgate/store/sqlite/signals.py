"""The signals area on SQLite: the ``signals`` table, filter fields lifted into columns."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import Doc
from fxgate.store.rules import check_paging, signal_columns
from fxgate.store.sqlite.docs import get_one, page
from fxgate.store.sqlite.tx import dumps, range_clause, ts, write_tx
from fxgate.store.sqlite.worker import Worker


def save_signal(conn: sqlite3.Connection, signal: Doc, user_id: str | None) -> bool:
    cols = signal_columns(signal)
    with write_tx(conn):
        row = conn.execute("SELECT user_id FROM signals WHERE uuid = ?", (cols["uuid"],)).fetchone()
        if row is not None and row["user_id"] != user_id:
            raise StoreConflictError("this signal uuid belongs to another owner")
        conn.execute(
            "INSERT INTO signals (uuid, user_id, symbol, side, status, source, ts, doc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (uuid) DO UPDATE SET symbol = excluded.symbol,"
            " side = excluded.side, status = excluded.status, source = excluded.source,"
            " ts = excluded.ts, doc = excluded.doc",
            (
                cols["uuid"],
                user_id,
                cols["symbol"],
                cols["side"],
                cols["status"],
                cols["source"],
                ts(cols["ts"]),
                dumps(signal),
            ),
        )
    return row is None


def _visible(viewer: str | None, where: list[str], args: list[Any]) -> None:
    if viewer is None:
        where.append("user_id IS NULL")
    else:
        where.append("(user_id IS NULL OR user_id = ?)")
        args.append(viewer)


class SQLiteSignals:
    """``SignalStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def save(self, signal: Doc, user_id: str | None = None) -> bool:
        return await self._w.run(save_signal, signal, user_id)

    async def get(self, uuid: str, viewer: str | None = None) -> Doc | None:
        where, args = ["uuid = ?"], [uuid]
        _visible(viewer, where, args)
        sql = f"SELECT doc FROM signals WHERE {' AND '.join(where)}"
        return await self._w.run(get_one, sql, args)

    async def page(
        self,
        *,
        viewer: str | None = None,
        symbol: str | None = None,
        side: str | None = None,
        status: str | None = None,
        source: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Doc], int]:
        check_paging(offset, limit)
        where: list[str] = []
        args: list[Any] = []
        _visible(viewer, where, args)
        for column, value in (
            ("symbol", symbol),
            ("side", side),
            ("status", status),
            ("source", source),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        range_clause("ts", start, end, where, args)
        return await self._w.run(page, "signals", where, args, "ts DESC, rowid DESC", offset, limit)
