"""The signals area on MongoDB: the ``signals`` collection, ``_id`` is the uuid."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import Doc
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, translating_errors
from fxgate.store.rules import signal_columns


def _visible(viewer: str | None) -> dict[str, Any]:
    if viewer is None:
        return {"user_id": None}
    return {"user_id": {"$in": [None, viewer]}}


@translating_errors
class MongoSignals:
    """``SignalStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def save(self, signal: Doc, user_id: str | None = None) -> bool:
        cols = signal_columns(signal)
        uuid = cols.pop("uuid")
        # The owner is part of the filter: another owner's uuid makes the upsert try an
        # insert, which the _id index refuses, so nobody takes over someone's signal.
        try:
            result = await self._m.c("signals").update_one(
                {"_id": uuid, "user_id": user_id},
                {
                    "$set": {**cols, "doc": dict(signal)},
                    "$setOnInsert": {"user_id": user_id, "created": time.time_ns()},
                },
                upsert=True,
            )
        except DuplicateKeyError as exc:
            raise StoreConflictError("this signal uuid belongs to another owner") from exc
        return result.upserted_id is not None

    async def get(self, uuid: str, viewer: str | None = None) -> Doc | None:
        return await self._m.get_body("signals", {"_id": uuid, **_visible(viewer)})

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
        query: dict[str, Any] = _visible(viewer)
        for key, value in (("symbol", symbol), ("side", side), ("status", status)):
            if value is not None:
                query[key] = value
        if source is not None:
            query["source"] = source
        if bounds := docs.range_query(start, end):
            query["ts"] = bounds
        # Signals of the same moment: the one published last comes first, as in SQLite.
        sort = [("ts", DESCENDING), ("created", DESCENDING)]
        rows, total = await self._m.page(self._m.c("signals"), query, sort, offset, limit)
        return [docs.body_of(d) for d in rows], total
