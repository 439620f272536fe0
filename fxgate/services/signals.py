"""Signals: kept in the store before they are announced, read back for lists and snapshots.

A signal arrives from outside (the publish API, ``node.ingest``; later the signal
engine) already checked against seed 002's shape by the ``signals`` channel. Saving it
under its ``uuid`` replaces an earlier version (``pending`` -> ``approved``), so the
store always holds each signal's latest state, and every version is announced.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fxgate.services.ports.store.records import Doc
from fxgate.services.ports.store.signals import SignalStore
from fxgate.services.signal_timing import SignalTiming


class SignalBook:
    def __init__(self, store: SignalStore) -> None:
        self.store = store
        #: ``signal_generation_ms`` (seed 000), fed by the hub's tap on ``signals``.
        self.timing = SignalTiming()

    async def keep(self, signal: Mapping[str, Any], user_id: str | None = None) -> bool:
        """Store ``signal`` (public for ``user_id=None``); True when it is new. Raises
        StoreConflictError for a uuid that another owner's signal has."""
        return await self.store.save(dict(signal), user_id)

    async def recent(self, user_id: str, limit: int = 20) -> list[Doc]:
        """The latest ``limit`` signals ``user_id`` may see, oldest first."""
        items, _ = await self.store.page(viewer=user_id, limit=limit)
        return items[::-1]

    async def get(self, user_id: str, uuid: str) -> Doc | None:
        return await self.store.get(uuid, user_id)

    async def page(
        self,
        user_id: str,
        *,
        symbol: str | None = None,
        side: str | None = None,
        status: str | None = None,
        source: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Doc], int]:
        """What ``user_id`` may see (public signals and their own), newest first."""
        return await self.store.page(
            viewer=user_id,
            symbol=symbol,
            side=side,
            status=status,
            source=source,
            start=start,
            end=end,
            offset=offset,
            limit=limit,
        )
