"""The signals area: trading signals (seed 002's shape), public or one user's.

A signal is keyed by its ``uuid``; saving the same uuid again (``pending`` becoming
``approved``) replaces the record. Its owner is ``None`` for a public signal (every
user sees it) or a user id (only that user does); the owner never changes, so a uuid
cannot be taken over by someone else's publish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from fxgate.services.ports.store.records import Doc


class SignalStore(Protocol):
    async def save(self, signal: Doc, user_id: str | None = None) -> bool:
        """Insert or replace the signal ``signal["uuid"]``; True when it is new.

        ``signal`` must carry the string fields ``uuid symbol side status source`` and
        an ISO 8601 ``timestamp`` (ValueError otherwise). Raises StoreConflictError when
        the uuid exists with another owner (another user's, or public and private)."""
        ...

    async def get(self, uuid: str, viewer: str | None = None) -> Doc | None:
        """The signal if ``viewer`` may see it (public, or ``viewer``'s own)."""
        ...

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
        """The signals ``viewer`` may see (public ones, and ``viewer``'s own; public
        only for ``None``), newest ``timestamp`` first; ``start <= timestamp < end``."""
        ...
