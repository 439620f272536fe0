"""The strategies area: users' stored strategy definitions."""

from __future__ import annotations

from typing import Protocol

from fxgate.services.ports.store.records import Doc


class StrategyStore(Protocol):
    async def save(self, user_id: str, strategy_id: str, doc: Doc) -> None:
        """Upsert a user's strategy. Raises StoreConflictError if the id is another user's."""
        ...

    async def get(self, user_id: str, strategy_id: str) -> Doc | None: ...

    async def of_user(self, user_id: str) -> list[Doc]:
        """A user's strategies, oldest first."""
        ...
