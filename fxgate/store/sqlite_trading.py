"""SQLite statements for the engine's records, counters, candles and channel history.

Plain synchronous functions of a connection, run on the store's worker thread; the
async facade in ``sqlite.py`` documents the contract (see ``port.Store``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fxgate.store.port import StoreConflictError
from fxgate.store.records import (
    Candle,
    Doc,
    HistoryEntry,
    OwnedDoc,
    check_paging,
    doc_time,
    now,
    optional_str,
    optional_ticket,
    require_str,
    require_ticket,
)
from fxgate.store.sqlite_tx import (
    dumps,
    loads,
    parse_ts,
    range_clause,
    read_tx,
    ts,
    ts_or_none,
    write_tx,
)


def _docs(rows: Sequence[sqlite3.Row]) -> list[Doc]:
    return [loads(r["doc"]) for r in rows]


def _order_row(doc: Doc) -> tuple[Any, ...]:
    return (
        require_str(doc, "id", "order"),
        require_str(doc, "user_id", "order"),
        optional_ticket(doc, "order"),
        optional_str(doc, "symbol", "order"),
        optional_str(doc, "status", "order"),
        optional_str(doc, "client_order_id", "order"),
        ts_or_none(doc_time(doc.get("created_at"))),
        dumps(doc),
    )


def _position_row(doc: Doc) -> tuple[Any, ...]:
    return (
        require_ticket(doc, "position"),
        require_str(doc, "user_id", "position"),
        optional_str(doc, "symbol", "position"),
        optional_str(doc, "status", "position"),
        dumps(doc),
    )


def _deal_row(doc: Doc) -> tuple[Any, ...]:
    return (
        require_ticket(doc, "deal"),
        require_str(doc, "user_id", "deal"),
        optional_str(doc, "symbol", "deal"),
        ts_or_none(doc_time(doc.get("time"))),
        dumps(doc),
    )


def _account_row(doc: Doc) -> tuple[Any, ...]:
    return (require_str(doc, "user_id", "account"), dumps(doc))


def save_trading(
    conn: sqlite3.Connection,
    *,
    orders: Sequence[Doc],
    deals: Sequence[Doc],
    positions: Sequence[Doc],
    accounts: Sequence[Doc],
) -> None:
    # Rows are built (and validated) inside the transaction: a bad document rolls the
    # whole batch back exactly like a constraint violation does.
    with write_tx(conn):
        conn.executemany(
            "INSERT INTO orders (id, user_id, ticket, symbol, status, client_order_id,"
            " created_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id,"
            " ticket = excluded.ticket, symbol = excluded.symbol, status = excluded.status,"
            " client_order_id = excluded.client_order_id, created_at = excluded.created_at,"
            " doc = excluded.doc",
            [_order_row(d) for d in orders],
        )
        conn.executemany(
            "INSERT INTO deals (ticket, user_id, symbol, time, doc) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (ticket) DO UPDATE SET user_id = excluded.user_id,"
            " symbol = excluded.symbol, time = excluded.time, doc = excluded.doc",
            [_deal_row(d) for d in deals],
        )
        conn.executemany(
            "INSERT INTO positions (ticket, user_id, symbol, status, doc) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (ticket) DO UPDATE SET user_id = excluded.user_id,"
            " symbol = excluded.symbol, status = excluded.status, doc = excluded.doc",
            [_position_row(d) for d in positions],
        )
        conn.executemany(
            "INSERT INTO accounts (user_id, doc) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc",
            [_account_row(d) for d in accounts],
        )


def get_one(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Doc | None:
    row = conn.execute(sql, args).fetchone()
    return None if row is None else loads(row["doc"])


def get_all(conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> list[Doc]:
    return _docs(conn.execute(sql, args).fetchall())


def list_orders(
    conn: sqlite3.Connection,
    user_id: str,
    *,
    status: str | None,
    symbol: str | None,
    start: datetime | None,
    end: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[Doc], int]:
    check_paging(offset, limit)
    where = ["user_id = ?"]
    args: list[Any] = [user_id]
    for column, value in (("status", status), ("symbol", symbol)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    range_clause("created_at", start, end, where, args)
    return _page(conn, "orders", where, args, "created_at DESC, id DESC", offset, limit)


def list_deals(
    conn: sqlite3.Connection,
    user_id: str,
    *,
    symbol: str | None,
    start: datetime | None,
    end: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[Doc], int]:
    check_paging(offset, limit)
    where = ["user_id = ?"]
    args: list[Any] = [user_id]
    if symbol is not None:
        where.append("symbol = ?")
        args.append(symbol)
    range_clause("time", start, end, where, args)
    return _page(conn, "deals", where, args, "time DESC, ticket DESC", offset, limit)


def _page(
    conn: sqlite3.Connection,
    table: str,
    where: list[str],
    args: list[Any],
    order: str,
    offset: int,
    limit: int,
) -> tuple[list[Doc], int]:
    clause = " AND ".join(where)
    with read_tx(conn):
        total = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {clause}", args).fetchone()[0]
        rows = conn.execute(
            f"SELECT doc FROM {table} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
    return _docs(rows), int(total)


def list_pending_orders(conn: sqlite3.Connection, statuses: Sequence[str]) -> list[Doc]:
    if not statuses:
        return []
    marks = ", ".join("?" for _ in statuses)
    return get_all(
        conn,
        f"SELECT doc FROM orders WHERE status IN ({marks}) ORDER BY created_at, id",
        list(statuses),
    )


def next_sequence(conn: sqlite3.Connection, name: str) -> int:
    with write_tx(conn):
        row = conn.execute(
            "INSERT INTO sequences (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            (name,),
        ).fetchone()
    return int(row[0])


# -- alerts and strategies: documents owned by one user ---------------------------------

_NOUNS = {"alerts": "alert", "strategies": "strategy"}


def save_owned(conn: sqlite3.Connection, table: str, user_id: str, doc_id: str, doc: Doc) -> None:
    # The upsert only updates a row of the same owner; otherwise nothing changes and
    # the id is another user's: refused, never silently taken over.
    with write_tx(conn):
        cur = conn.execute(
            f"INSERT INTO {table} (id, user_id, created_at, doc) VALUES (?, ?, ?, ?)"
            f" ON CONFLICT (id) DO UPDATE SET doc = excluded.doc"
            f" WHERE {table}.user_id = excluded.user_id",
            (doc_id, user_id, ts(now()), dumps(doc)),
        )
        if cur.rowcount == 0:
            raise StoreConflictError(f"this {_NOUNS[table]} id belongs to another user")


def delete_owned(conn: sqlite3.Connection, table: str, user_id: str, doc_id: str) -> bool:
    with write_tx(conn):
        cur = conn.execute(f"DELETE FROM {table} WHERE id = ? AND user_id = ?", (doc_id, user_id))
    return cur.rowcount == 1


def list_all_owned(conn: sqlite3.Connection, table: str) -> list[OwnedDoc]:
    rows = conn.execute(f"SELECT id, user_id, doc FROM {table} ORDER BY created_at, id")
    return [OwnedDoc(r["id"], r["user_id"], loads(r["doc"])) for r in rows.fetchall()]


# -- signals ----------------------------------------------------------------------------


def save_signal(conn: sqlite3.Connection, signal_id: str, user_id: str | None, doc: Doc) -> None:
    with write_tx(conn):
        conn.execute(
            "INSERT INTO signals (id, user_id, doc) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, doc = excluded.doc",
            (signal_id, user_id, dumps(doc)),
        )


def get_signal(conn: sqlite3.Connection, signal_id: str) -> OwnedDoc | None:
    row = conn.execute("SELECT id, user_id, doc FROM signals WHERE id = ?", (signal_id,)).fetchone()
    return None if row is None else OwnedDoc(row["id"], row["user_id"], loads(row["doc"]))


def list_signals(
    conn: sqlite3.Connection, user_id: str | None, *, offset: int, limit: int
) -> tuple[list[Doc], int]:
    check_paging(offset, limit)
    if user_id is None:
        where, args = ["user_id IS NULL"], []
    else:
        where, args = ["(user_id IS NULL OR user_id = ?)"], [user_id]
    return _page(conn, "signals", where, list(args), "seq DESC", offset, limit)


# -- candles ----------------------------------------------------------------------------


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


# -- channel history --------------------------------------------------------------------


def append_history(
    conn: sqlite3.Connection,
    stream: str,
    offset: int,
    epoch: str,
    payload: Mapping[str, Any],
    retention: int,
) -> None:
    with write_tx(conn):
        conn.execute(
            "DELETE FROM history WHERE stream = ? AND (stream_offset <= ? OR epoch <> ?)",
            (stream, offset - retention, epoch),
        )
        conn.execute(
            "INSERT INTO history (stream, stream_offset, epoch, payload) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (stream, stream_offset) DO UPDATE SET epoch = excluded.epoch,"
            " payload = excluded.payload",
            (stream, offset, epoch, dumps(payload)),
        )


def _history(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        stream=row["stream"],
        offset=row["stream_offset"],
        epoch=row["epoch"],
        payload=loads(row["payload"]),
    )


def read_history(
    conn: sqlite3.Connection, stream: str, after_offset: int, limit: int
) -> list[HistoryEntry]:
    check_paging(0, limit)
    rows = conn.execute(
        "SELECT * FROM history WHERE stream = ? AND stream_offset > ?"
        " ORDER BY stream_offset LIMIT ?",
        (stream, after_offset, limit),
    ).fetchall()
    return [_history(r) for r in rows]


def last_history(conn: sqlite3.Connection, stream: str) -> HistoryEntry | None:
    row = conn.execute(
        "SELECT * FROM history WHERE stream = ? ORDER BY stream_offset DESC LIMIT 1", (stream,)
    ).fetchone()
    return None if row is None else _history(row)
