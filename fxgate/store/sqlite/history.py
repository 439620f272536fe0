"""The history area on SQLite: ``history`` entries, ``history_heads``, ``history_run``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from fxgate.services.ports.store.history import HistoryEntry, HistoryRun
from fxgate.store.sqlite.tx import dumps, loads, parse_ts, ts, write_tx
from fxgate.store.sqlite.worker import Worker


def _append(conn: sqlite3.Connection, entries: Sequence[HistoryEntry]) -> None:
    with write_tx(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO history"
            " (channel, key, epoch, stream_offset, expires_at, doc) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.channel, e.key, e.epoch, e.offset, ts(e.expires_at), dumps(e.envelope))
                for e in entries
            ],
        )
        conn.executemany(
            "INSERT INTO history_heads (channel, key, epoch, stream_offset) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (channel, key, epoch) DO UPDATE SET"
            " stream_offset = MAX(stream_offset, excluded.stream_offset)",
            [(e.channel, e.key, e.epoch, e.offset) for e in entries],
        )


def _read(
    conn: sqlite3.Connection,
    channel: str,
    key: str,
    epoch: str,
    after: int,
    limit: int,
    now: datetime,
) -> list[HistoryEntry]:
    rows = conn.execute(
        "SELECT stream_offset, expires_at, doc FROM history"
        " WHERE channel = ? AND key = ? AND epoch = ? AND stream_offset > ? AND expires_at > ?"
        " ORDER BY stream_offset LIMIT ?",
        (channel, key, epoch, after, ts(now), limit),
    ).fetchall()
    return [
        HistoryEntry(
            channel, key, epoch, r["stream_offset"], loads(r["doc"]), parse_ts(r["expires_at"])
        )
        for r in rows
    ]


def _purge(conn: sqlite3.Connection, now: datetime, epoch: str) -> int:
    with write_tx(conn):
        n = conn.execute(
            "DELETE FROM history WHERE expires_at <= ? OR epoch != ?", (ts(now), epoch)
        ).rowcount
        conn.execute("DELETE FROM history_heads WHERE epoch != ?", (epoch,))
    return int(n)


def _trim(conn: sqlite3.Connection, channel: str, key: str, epoch: str, upto: int) -> int:
    with write_tx(conn):
        return int(
            conn.execute(
                "DELETE FROM history WHERE channel = ? AND key = ? AND epoch = ?"
                " AND stream_offset <= ?",
                (channel, key, epoch, upto),
            ).rowcount
        )


def _set_run(conn: sqlite3.Connection, run: HistoryRun) -> None:
    with write_tx(conn):
        conn.execute(
            "INSERT INTO history_run (id, epoch, clean) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, clean = excluded.clean",
            (run.epoch, int(run.clean)),
        )


class SQLiteHistory:
    """``HistoryStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def append(self, entries: Sequence[HistoryEntry]) -> None:
        if entries:
            await self._w.run(_append, list(entries))

    async def read(
        self, channel: str, key: str, epoch: str, after: int, limit: int, now: datetime
    ) -> list[HistoryEntry]:
        return await self._w.run(_read, channel, key, epoch, after, limit, now)

    async def heads(self, epoch: str) -> dict[tuple[str, str], int]:
        def go(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
            rows = conn.execute(
                "SELECT channel, key, stream_offset FROM history_heads WHERE epoch = ?",
                (epoch,),
            ).fetchall()
            return {(r["channel"], r["key"]): r["stream_offset"] for r in rows}

        return await self._w.run(go)

    async def trim(self, channel: str, key: str, epoch: str, upto: int) -> int:
        return await self._w.run(_trim, channel, key, epoch, upto)

    async def purge(self, now: datetime, epoch: str) -> int:
        return await self._w.run(_purge, now, epoch)

    async def run(self) -> HistoryRun | None:
        def go(conn: sqlite3.Connection) -> HistoryRun | None:
            row = conn.execute("SELECT epoch, clean FROM history_run WHERE id = 1").fetchone()
            return None if row is None else HistoryRun(row["epoch"], bool(row["clean"]))

        return await self._w.run(go)

    async def set_run(self, run: HistoryRun) -> None:
        await self._w.run(_set_run, run)
