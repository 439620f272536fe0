"""The usage area on MongoDB: ``api_calls``, one document per (day, user).

``_id`` is ``day|user``, so an ``$inc`` upsert creates or increments the one document
atomically. Taking the last call filters on ``calls < limit``: when the document is at
the limit the filter misses, the upsert tries an insert with the existing ``_id``, and
the unique ``_id`` index refuses it, so two nodes can never both take it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from fxgate.store.mongodb.conn import Mongo, translating_errors


def _id(day: str, user_id: str) -> str:
    return f"{day}|{user_id}"


@translating_errors
class MongoUsage:
    """``UsageStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def add_api_calls(self, day: str, counts: Mapping[str, int]) -> dict[str, int]:
        coll = self._m.c("api_calls")
        totals: dict[str, int] = {}
        for user_id, n in counts.items():
            if n <= 0:
                continue
            doc = await coll.find_one_and_update(
                {"_id": _id(day, user_id)},
                {"$inc": {"calls": n}, "$setOnInsert": {"day": day, "user_id": user_id}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            totals[user_id] = int(doc["calls"])
        missing = [u for u in counts if u not in totals]
        if missing:
            totals.update(await self.api_calls(day, missing))
        return totals

    async def take_api_call(self, day: str, user_id: str, limit: int) -> int | None:
        if limit <= 0:
            return None
        try:
            doc = await self._m.c("api_calls").find_one_and_update(
                {"_id": _id(day, user_id), "calls": {"$lt": limit}},
                {"$inc": {"calls": 1}, "$setOnInsert": {"day": day, "user_id": user_id}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # the document exists, at the limit
            return None
        return int(doc["calls"])

    async def api_calls(self, day: str, user_ids: Collection[str]) -> dict[str, int]:
        totals = dict.fromkeys(user_ids, 0)
        if not totals:
            return totals
        ids = [_id(day, u) for u in totals]
        async for doc in self._m.c("api_calls").find({"_id": {"$in": ids}}):
            totals[doc["user_id"]] = int(doc["calls"])
        return totals

    async def purge_api_calls(self, before: str) -> int:
        result = await self._m.c("api_calls").delete_many({"day": {"$lt": before}})
        return int(result.deleted_count)
