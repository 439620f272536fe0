"""Trading strategies as their owners define them (seed 003), kept per user.

The engine that runs strategies comes later; for now a strategy is a stored definition
that starts ``inactive`` with zeroed performance, so that dashboards can list and show
it. Documents are kept in seed 003's camelCase shape, the one every reader wants.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fxgate.domain.errors import NotFoundError
from fxgate.domain.timefmt import iso_ms
from fxgate.services.ports.store.audit import AuditLog
from fxgate.services.ports.store.records import Doc
from fxgate.services.ports.store.strategies import StrategyStore

ZERO_PERFORMANCE: Mapping[str, float | int] = {
    "totalTrades": 0,
    "winRate": 0.0,
    "totalPnL": 0.0,
    "sharpeRatio": 0.0,
}


class StrategyService:
    def __init__(
        self,
        store: StrategyStore,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.audit = audit
        self._clock = clock

    async def create(
        self,
        user_id: str,
        *,
        name: str,
        description: str,
        kind: str,
        symbols: Sequence[str],
        risk_management: Mapping[str, Any],
        parameters: Mapping[str, Any],
    ) -> Doc:
        """Store a new strategy for ``user_id``: ``inactive``, no performance yet."""
        stamp = iso_ms(self._clock())
        doc: Doc = {
            "id": "stg_" + secrets.token_hex(10),
            "name": name,
            "description": description,
            "type": kind,
            "status": "inactive",
            "symbols": list(symbols),
            "riskManagement": dict(risk_management),
            "parameters": dict(parameters),
            "performance": dict(ZERO_PERFORMANCE),
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        await self.store.save(user_id, doc["id"], doc)
        await self.audit.append(user_id, "strategy.create", doc["id"], {"name": name})
        return doc

    async def list(self, user_id: str) -> list[Doc]:
        return await self.store.of_user(user_id)

    async def get(self, user_id: str, strategy_id: str) -> Doc:
        """The user's strategy; another user's is "not found", never shown."""
        doc = await self.store.get(user_id, strategy_id)
        if doc is None:
            raise NotFoundError("Strategy not found")
        return doc
