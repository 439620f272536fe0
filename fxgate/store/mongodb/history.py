"""The history area on MongoDB: ``history`` (a TTL index drops expired entries),
``history_heads`` and ``history_run``.

An entry's envelope is kept as JSON text, as on SQLite: it is read back whole and never
queried, and a payload key with a dot or a dollar stays harmless.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from fxgate.services.ports.store.history import HistoryEntry, HistoryRun
from fxgate.store.mongodb.conn import Mongo, translating_errors
from fxgate.store.rules import utc

#: Single-document writes kept in flight at once (mongomock has no bulk_write).
_CONCURRENT_WRITES = 32


def _where(e: HistoryEntry) -> dict[str, Any]:
    return {"channel": e.channel, "key": e.key, "epoch": e.epoch, "offset": e.offset}


@translating_errors
class MongoHistory:
    """``HistoryStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def append(self, entries: Sequence[HistoryEntry]) -> None:
        history, heads = self._m.c("history"), self._m.c("history_heads")

        async def one(e: HistoryEntry) -> None:
            doc = {**_where(e), "expires_at": utc(e.expires_at), "doc": json.dumps(e.envelope)}
            await history.replace_one(_where(e), doc, upsert=True)

        for i in range(0, len(entries), _CONCURRENT_WRITES):
            await asyncio.gather(*(one(e) for e in entries[i : i + _CONCURRENT_WRITES]))
        top: dict[tuple[str, str, str], int] = {}
        for e in entries:
            k = (e.channel, e.key, e.epoch)
            top[k] = max(top.get(k, 0), e.offset)
        await asyncio.gather(
            *(
                heads.update_one(
                    {"channel": c, "key": k, "epoch": ep}, {"$max": {"offset": o}}, upsert=True
                )
                for (c, k, ep), o in top.items()
            )
        )

    async def read(
        self, channel: str, key: str, epoch: str, after: int, limit: int, now: datetime
    ) -> list[HistoryEntry]:
        query = {
            "channel": channel,
            "key": key,
            "epoch": epoch,
            "offset": {"$gt": after},
            "expires_at": {"$gt": utc(now)},
        }
        cursor = self._m.c("history").find(query).sort("offset", ASCENDING).limit(limit)
        return [
            HistoryEntry(
                channel, key, epoch, d["offset"], json.loads(d["doc"]), utc(d["expires_at"])
            )
            async for d in cursor
        ]

    async def heads(self, epoch: str) -> dict[tuple[str, str], int]:
        cursor = self._m.c("history_heads").find({"epoch": epoch})
        return {(d["channel"], d["key"]): d["offset"] async for d in cursor}

    async def trim(self, channel: str, key: str, epoch: str, upto: int) -> int:
        result = await self._m.c("history").delete_many(
            {"channel": channel, "key": key, "epoch": epoch, "offset": {"$lte": upto}}
        )
        return int(result.deleted_count)

    async def purge(self, now: datetime, epoch: str) -> int:
        result = await self._m.c("history").delete_many(
            {"$or": [{"expires_at": {"$lte": utc(now)}}, {"epoch": {"$ne": epoch}}]}
        )
        await self._m.c("history_heads").delete_many({"epoch": {"$ne": epoch}})
        return int(result.deleted_count)

    async def run(self) -> HistoryRun | None:
        d = await self._m.c("history_run").find_one({"_id": "run"})
        return None if d is None else HistoryRun(d["epoch"], bool(d["clean"]))

    async def set_run(self, run: HistoryRun) -> None:
        await self._m.c("history_run").replace_one(
            {"_id": "run"}, {"_id": "run", "epoch": run.epoch, "clean": run.clean}, upsert=True
        )
