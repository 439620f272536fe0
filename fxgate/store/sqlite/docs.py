"""JSON document tables on SQLite: one ``doc`` column, the indexed fields lifted out.

Shared by the areas that keep documents (trading records, alerts, strategies); plain
functions of a connection, run on the worker thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import Doc
from fxgate.store.rules import now
from fxgate.store.sqlite.fencing import check_fence
from fxgate.store.sqlite.tx import dumps, loads, read_tx, ts, write_tx


def docs_of(rows: Sequence[sqlite3.Row]) -> list[Doc]:
    return [loads(r["doc"]) for r in rows]


def get_one(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Doc | None:
    row = conn.execute(sql, args).fetchone()
    return None if row is None else loads(row["doc"])


def get_all(conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> list[Doc]:
    return docs_of(conn.execute(sql, args).fetchall())


def page(
    conn: sqlite3.Connection,
    table: str,
    where: list[str],
    args: list[Any],
    order: str,
    offset: int,
    limit: int,
) -> tuple[list[Doc], int]:
    """One page and the total of its query, read in one snapshot so they agree."""
    clause = " AND ".join(where)
    with read_tx(conn):
        total = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {clause}", args).fetchone()[0]
        rows = conn.execute(
            f"SELECT doc FROM {table} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
    return docs_of(rows), int(total)


#: Tables of documents owned by one user, with the noun their conflicts name.
OWNED = {"alerts": "alert", "strategies": "strategy"}


def save_owned(
    conn: sqlite3.Connection,
    table: str,
    user_id: str,
    doc_id: str,
    doc: Doc,
    *,
    fence: int | None = None,
) -> None:
    # The upsert only updates a row of the same owner; otherwise nothing changes and
    # the id is another user's: refused, never silently taken over. ``fence``: see
    # ``fencing.py`` (alerts are trading writes).
    with write_tx(conn):
        check_fence(conn, fence)
        cur = conn.execute(
            f"INSERT INTO {table} (id, user_id, created_at, doc) VALUES (?, ?, ?, ?)"
            f" ON CONFLICT (id) DO UPDATE SET doc = excluded.doc"
            f" WHERE {table}.user_id = excluded.user_id",
            (doc_id, user_id, ts(now()), dumps(doc)),
        )
        if cur.rowcount == 0:
            raise StoreConflictError(f"this {OWNED[table]} id belongs to another user")
