"""The strategies area on MongoDB: the ``strategies`` collection, owned per user."""

from __future__ import annotations

from pymongo import ASCENDING

from fxgate.services.ports.store.records import Doc
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, translating_errors


@translating_errors
class MongoStrategies:
    """``StrategyStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def save(self, user_id: str, strategy_id: str, doc: Doc) -> None:
        await self._m.save_owned("strategies", "strategy", user_id, strategy_id, doc)

    async def get(self, user_id: str, strategy_id: str) -> Doc | None:
        return await self._m.get_body("strategies", {"_id": strategy_id, "user_id": user_id})

    async def of_user(self, user_id: str) -> list[Doc]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows = await self._m.all(self._m.c("strategies"), {"user_id": user_id}, sort)
        return [docs.body_of(d) for d in rows]
