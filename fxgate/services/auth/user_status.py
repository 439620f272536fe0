"""Whether a token's user may still act: disabled and removed users are refused.

A JWT stays valid until it expires, so disabling a user (``fxgate users disable``, in
another process) must reach every daemon some other way. Reading the user on every
request would cost a store round trip per request; instead each daemon keeps the status
of the users it has seen and re-reads, every ``refresh`` seconds, only the users
*changed since* its last read (one query, whatever the number of users or
connections), like the key ring's periodic read. A user seen for the first time is read
once.

Worst case, a disabled user keeps access for ``refresh`` seconds (plus the read's own
time): the next re-read refuses their requests and closes their sockets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from fxgate.services.ports.store.records import User

log = logging.getLogger(__name__)

#: Each re-read starts this far before the previous one began, so that a write stamped
#: by a process whose clock is a little behind ours, or committed while we read, is not
#: missed. Re-reading a minute of changes costs a few rows.
OVERLAP = 60.0
#: Cached users beyond this are forgotten (and read again when next seen).
MAX_ENTRIES = 200_000


class UserDirectory(Protocol):
    """What the status cache needs from the store's users area."""

    async def get(self, user_id: str) -> User | None: ...

    async def changed_since(self, since: datetime) -> list[User]: ...


class UserStatus:
    def __init__(
        self,
        store: UserDirectory,
        *,
        refresh: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.refresh_interval = refresh
        self._clock = clock
        self._active: dict[str, bool] = {}
        self._since = clock() - OVERLAP

    async def is_active(self, user_id: str) -> bool:
        """True if the user exists and is not disabled, as of the last re-read."""
        active = self._active.get(user_id)
        if active is None:
            user = await self._store.get(user_id)
            active = user is not None and not user.disabled
            if len(self._active) >= MAX_ENTRIES:
                self._active.clear()
            self._active[user_id] = active
        return active

    async def refresh(self) -> set[str]:
        """Re-read the users changed since the last read; the ids of those who were
        active and are not any more (to close their connections)."""
        started = self._clock()
        changed = await self._store.changed_since(datetime.fromtimestamp(self._since, UTC))
        refused = set()
        for user in changed:
            known = self._active.get(user.id)
            if known is None:
                continue
            active = not user.disabled
            if known and not active:
                refused.add(user.id)
            self._active[user.id] = active
        self._since = started - OVERLAP
        return refused

    async def run(self, on_refused: Callable[[set[str]], None]) -> None:
        """Re-read forever; ``on_refused(user_ids)`` for users just disabled."""
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                refused = await self.refresh()
            except Exception:
                log.exception("could not re-read the users")
                continue
            if refused:
                log.info("users disabled", extra={"users": sorted(refused)})
                on_refused(refused)
