"""The audit area on SQLite: the append-only ``audit`` table."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fxgate.services.ports.store.records import AuditEntry
from fxgate.store.rules import check_paging, now, utc
from fxgate.store.sqlite.tx import dumps, loads, parse_ts, range_clause, read_tx, ts, write_tx
from fxgate.store.sqlite.worker import Worker


def _audit(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=str(row["id"]),
        ts=parse_ts(row["ts"]),
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        details=loads(row["details"]),
    )


def append_audit(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None,
    when: datetime | None,
) -> AuditEntry:
    stamp = now() if when is None else utc(when)
    body = dict(details or {})
    with write_tx(conn):
        cur = conn.execute(
            "INSERT INTO audit (ts, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
            (ts(stamp), actor, action, target, dumps(body)),
        )
    return AuditEntry(
        id=str(cur.lastrowid), ts=stamp, actor=actor, action=action, target=target, details=body
    )


def list_audit(
    conn: sqlite3.Connection,
    *,
    actor: str | None,
    action: str | None,
    target: str | None,
    start: datetime | None,
    end: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[AuditEntry], int]:
    check_paging(offset, limit)
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("actor", actor), ("action", action), ("target", target)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    range_clause("ts", start, end, where, args)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    with read_tx(conn):
        total = conn.execute(f"SELECT COUNT(*) FROM audit {clause}", args).fetchone()[0]
        rows = conn.execute(
            f"SELECT * FROM audit {clause} ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
    return [_audit(r) for r in rows], int(total)


class SQLiteAudit:
    """``AuditLog`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def append(
        self,
        actor: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> AuditEntry:
        return await self._w.run(append_audit, actor, action, target, details, ts)

    async def page(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[AuditEntry], int]:
        return await self._w.run(
            list_audit,
            actor=actor,
            action=action,
            target=target,
            start=start,
            end=end,
            offset=offset,
            limit=limit,
        )
