"""The audit area: who did what to which target, append-only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from fxgate.services.ports.store.records import AuditEntry


class AuditLog(Protocol):
    async def append(
        self,
        actor: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry (``ts`` defaults to now). ``details`` must hold no secrets."""
        ...

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
        """Matching entries, newest first; ``start <= ts < end``."""
        ...
