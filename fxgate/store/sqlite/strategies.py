"""The strategies area on SQLite: the ``strategies`` document table, owned per user."""

from __future__ import annotations

from fxgate.services.ports.store.records import Doc
from fxgate.store.sqlite.docs import get_all, get_one, save_owned
from fxgate.store.sqlite.worker import Worker


class SQLiteStrategies:
    """``StrategyStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def save(self, user_id: str, strategy_id: str, doc: Doc) -> None:
        await self._w.run(save_owned, "strategies", user_id, strategy_id, doc)

    async def get(self, user_id: str, strategy_id: str) -> Doc | None:
        sql = "SELECT doc FROM strategies WHERE id = ? AND user_id = ?"
        return await self._w.run(get_one, sql, (strategy_id, user_id))

    async def of_user(self, user_id: str) -> list[Doc]:
        sql = "SELECT doc FROM strategies WHERE user_id = ? ORDER BY created_at, id"
        return await self._w.run(get_all, sql, (user_id,))
