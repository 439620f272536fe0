"""The audit area on MongoDB: the append-only ``audit`` collection."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import DESCENDING

from fxgate.services.ports.store.records import AuditEntry
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, translating_errors
from fxgate.store.rules import now, utc


@translating_errors
class MongoAudit:
    """``AuditLog`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def append(
        self,
        actor: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> AuditEntry:
        stamp = now() if ts is None else utc(ts)
        body = dict(details or {})
        result = await self._m.c("audit").insert_one(
            {"ts": stamp, "actor": actor, "action": action, "target": target, "details": body}
        )
        return AuditEntry(
            id=str(result.inserted_id),
            ts=stamp,
            actor=actor,
            action=action,
            target=target,
            details=body,
        )

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
        query: dict[str, Any] = {
            k: v
            for k, v in (("actor", actor), ("action", action), ("target", target))
            if v is not None
        }
        if bounds := docs.range_query(start, end):
            query["ts"] = bounds
        sort = [("ts", DESCENDING), ("_id", DESCENDING)]
        rows, total = await self._m.page(self._m.c("audit"), query, sort, offset, limit)
        return [docs.audit_from(d) for d in rows], total
