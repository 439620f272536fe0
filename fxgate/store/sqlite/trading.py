"""The trading area on SQLite: orders, positions, deals, accounts, sequences, alerts.

Records are stored as their codec documents (``fxgate.store.codecs``) with the indexed
fields lifted into columns; encoding and decoding run on the worker thread with the
statements, off the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fxgate.domain.trading import Account, Deal, Order, Position
from fxgate.services.ports.store.records import Doc, OwnedDoc
from fxgate.services.ports.store.trading import PENDING_ORDER_STATUSES
from fxgate.store.codecs import R, decode, encode
from fxgate.store.rules import (
    check_paging,
    doc_time,
    optional_str,
    optional_ticket,
    require_str,
    require_ticket,
)
from fxgate.store.sqlite.docs import page, save_owned
from fxgate.store.sqlite.fencing import check_fence
from fxgate.store.sqlite.tx import dumps, loads, range_clause, ts_or_none, write_tx
from fxgate.store.sqlite.worker import Worker


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
    orders: Sequence[Order],
    deals: Sequence[Deal],
    positions: Sequence[Position],
    accounts: Sequence[Account],
    fence: int | None = None,
) -> None:
    # Rows are built (and validated) inside the transaction: a bad record rolls the
    # whole batch back exactly like a constraint violation does, and so does a stale
    # fencing token.
    with write_tx(conn):
        check_fence(conn, fence)
        conn.executemany(
            "INSERT INTO orders (id, user_id, ticket, symbol, status, client_order_id,"
            " created_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id,"
            " ticket = excluded.ticket, symbol = excluded.symbol, status = excluded.status,"
            " client_order_id = excluded.client_order_id, created_at = excluded.created_at,"
            " doc = excluded.doc",
            [_order_row(encode(o)) for o in orders],
        )
        conn.executemany(
            "INSERT INTO deals (ticket, user_id, symbol, time, doc) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (ticket) DO UPDATE SET user_id = excluded.user_id,"
            " symbol = excluded.symbol, time = excluded.time, doc = excluded.doc",
            [_deal_row(encode(d)) for d in deals],
        )
        conn.executemany(
            "INSERT INTO positions (ticket, user_id, symbol, status, doc) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (ticket) DO UPDATE SET user_id = excluded.user_id,"
            " symbol = excluded.symbol, status = excluded.status, doc = excluded.doc",
            [_position_row(encode(p)) for p in positions],
        )
        conn.executemany(
            "INSERT INTO accounts (user_id, doc) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc",
            [_account_row(encode(a)) for a in accounts],
        )


def get_record(conn: sqlite3.Connection, cls: type[R], sql: str, args: Sequence[Any]) -> R | None:
    row = conn.execute(sql, args).fetchone()
    return None if row is None else decode(cls, loads(row["doc"]))


def get_records(
    conn: sqlite3.Connection, cls: type[R], sql: str, args: Sequence[Any] = ()
) -> list[R]:
    return [decode(cls, loads(r["doc"])) for r in conn.execute(sql, args).fetchall()]


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
) -> tuple[list[Order], int]:
    check_paging(offset, limit)
    where = ["user_id = ?"]
    args: list[Any] = [user_id]
    for column, value in (("status", status), ("symbol", symbol)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    range_clause("created_at", start, end, where, args)
    docs, total = page(conn, "orders", where, args, "created_at DESC, id DESC", offset, limit)
    return [decode(Order, d) for d in docs], total


def list_deals(
    conn: sqlite3.Connection,
    user_id: str,
    *,
    symbol: str | None,
    start: datetime | None,
    end: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[Deal], int]:
    check_paging(offset, limit)
    where = ["user_id = ?"]
    args: list[Any] = [user_id]
    if symbol is not None:
        where.append("symbol = ?")
        args.append(symbol)
    range_clause("time", start, end, where, args)
    docs, total = page(conn, "deals", where, args, "time DESC, ticket DESC", offset, limit)
    return [decode(Deal, d) for d in docs], total


def list_pending_orders(conn: sqlite3.Connection, statuses: Sequence[str]) -> list[Order]:
    if not statuses:
        return []
    marks = ", ".join("?" for _ in statuses)
    return get_records(
        conn,
        Order,
        f"SELECT doc FROM orders WHERE status IN ({marks}) ORDER BY created_at, id",
        list(statuses),
    )


def next_sequence(conn: sqlite3.Connection, name: str, fence: int | None = None) -> int:
    with write_tx(conn):
        check_fence(conn, fence)
        row = conn.execute(
            "INSERT INTO sequences (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            (name,),
        ).fetchone()
    return int(row[0])


def list_all_alerts(conn: sqlite3.Connection) -> list[OwnedDoc]:
    rows = conn.execute("SELECT id, user_id, doc FROM alerts ORDER BY created_at, id")
    return [OwnedDoc(r["id"], r["user_id"], loads(r["doc"])) for r in rows.fetchall()]


class SQLiteTrading:
    """``TradingStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def save(
        self,
        *,
        orders: Sequence[Order] = (),
        deals: Sequence[Deal] = (),
        positions: Sequence[Position] = (),
        accounts: Sequence[Account] = (),
        fence: int | None = None,
    ) -> None:
        await self._w.run(
            save_trading,
            orders=list(orders),
            deals=list(deals),
            positions=list(positions),
            accounts=list(accounts),
            fence=fence,
        )

    async def get_order(self, user_id: str, order_id: str) -> Order | None:
        sql = "SELECT doc FROM orders WHERE id = ? AND user_id = ?"
        return await self._w.run(get_record, Order, sql, (order_id, user_id))

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> Order | None:
        sql = "SELECT doc FROM orders WHERE user_id = ? AND client_order_id = ?"
        return await self._w.run(get_record, Order, sql, (user_id, client_order_id))

    async def list_orders(
        self,
        user_id: str,
        status: str | None = None,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Order], int]:
        return await self._w.run(
            list_orders,
            user_id,
            status=status,
            symbol=symbol,
            start=start,
            end=end,
            offset=offset,
            limit=limit,
        )

    async def list_pending_orders(
        self, statuses: Sequence[str] = PENDING_ORDER_STATUSES
    ) -> list[Order]:
        return await self._w.run(list_pending_orders, list(statuses))

    async def list_positions(self, user_id: str, status: str | None = None) -> list[Position]:
        args: tuple[str, ...] = (user_id,)
        if status is None:
            sql = "SELECT doc FROM positions WHERE user_id = ? ORDER BY ticket"
        else:
            sql = "SELECT doc FROM positions WHERE user_id = ? AND status = ? ORDER BY ticket"
            args = (user_id, status)
        return await self._w.run(get_records, Position, sql, args)

    async def list_open_positions(self) -> list[Position]:
        sql = "SELECT doc FROM positions WHERE status = 'open' ORDER BY ticket"
        return await self._w.run(get_records, Position, sql)

    async def list_deals(
        self,
        user_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
        symbol: str | None = None,
    ) -> tuple[list[Deal], int]:
        return await self._w.run(
            list_deals,
            user_id,
            symbol=symbol,
            start=start,
            end=end,
            offset=offset,
            limit=limit,
        )

    async def list_accounts(self) -> list[Account]:
        return await self._w.run(get_records, Account, "SELECT doc FROM accounts ORDER BY user_id")

    async def next_sequence(self, name: str, *, fence: int | None = None) -> int:
        return await self._w.run(next_sequence, name, fence)

    async def save_alert(
        self, user_id: str, alert_id: str, alert: Doc, *, fence: int | None = None
    ) -> None:
        await self._w.run(save_owned, "alerts", user_id, alert_id, alert, fence=fence)

    async def list_all_alerts(self) -> list[OwnedDoc]:
        return await self._w.run(list_all_alerts)
