"""The usage area on SQLite: ``api_calls``, one row per (day, user).

Every write is one ``BEGIN IMMEDIATE`` transaction, so two processes on one file (CLI
beside the daemon, or ``--workers``) serialise on SQLite's write lock and neither loses
an increment nor both take the last call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping

from fxgate.store.sqlite.tx import write_tx
from fxgate.store.sqlite.worker import Worker

_INCREMENT = (
    "INSERT INTO api_calls (day, user_id, calls) VALUES (?, ?, ?)"
    " ON CONFLICT (day, user_id) DO UPDATE SET calls = calls + excluded.calls"
)


def _totals(conn: sqlite3.Connection, day: str, user_ids: Collection[str]) -> dict[str, int]:
    totals = dict.fromkeys(user_ids, 0)
    ids = list(totals)
    for i in range(0, len(ids), 500):  # under SQLite's limit on bound parameters
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT user_id, calls FROM api_calls WHERE day = ? AND user_id IN ({marks})",
            (day, *chunk),
        ):
            totals[row["user_id"]] = int(row["calls"])
    return totals


def add_calls(conn: sqlite3.Connection, day: str, counts: Mapping[str, int]) -> dict[str, int]:
    with write_tx(conn):
        conn.executemany(_INCREMENT, [(day, u, n) for u, n in counts.items() if n > 0])
        return _totals(conn, day, counts.keys())


def take_call(conn: sqlite3.Connection, day: str, user_id: str, limit: int) -> int | None:
    with write_tx(conn):
        total = _totals(conn, day, (user_id,))[user_id]
        if total >= limit:
            return None
        conn.execute(_INCREMENT, (day, user_id, 1))
        return total + 1


def read_calls(conn: sqlite3.Connection, day: str, user_ids: Collection[str]) -> dict[str, int]:
    return _totals(conn, day, user_ids)


def purge_calls(conn: sqlite3.Connection, before: str) -> int:
    with write_tx(conn):
        return conn.execute("DELETE FROM api_calls WHERE day < ?", (before,)).rowcount


class SQLiteUsage:
    """``UsageStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def add_api_calls(self, day: str, counts: Mapping[str, int]) -> dict[str, int]:
        return await self._w.run(add_calls, day, dict(counts))

    async def take_api_call(self, day: str, user_id: str, limit: int) -> int | None:
        return await self._w.run(take_call, day, user_id, limit)

    async def api_calls(self, day: str, user_ids: Collection[str]) -> dict[str, int]:
        return await self._w.run(read_calls, day, list(user_ids))

    async def purge_api_calls(self, before: str) -> int:
        return await self._w.run(purge_calls, before)
