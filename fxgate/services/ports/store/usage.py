"""The usage area: each user's REST calls per UTC day, for the daily quota.

The count is the store's, not a process's, so that a restart does not hand a user a
fresh quota and that ``fxgate serve --workers N`` or several nodes share one quota
(``fxgate.services.quota`` batches the writes). A day is ``YYYY-MM-DD`` (UTC). Rows of
past days are of no use once the day is over: ``purge_api_calls`` drops them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol


class UsageStore(Protocol):
    async def add_api_calls(self, day: str, counts: Mapping[str, int]) -> dict[str, int]:
        """Add ``counts[user]`` to each user's calls on ``day`` and return every named
        user's new total (a count of 0 only reads). Each user's increment is atomic, so
        several processes adding at once lose none."""
        ...

    async def take_api_call(self, day: str, user_id: str, limit: int) -> int | None:
        """Count one call for ``user_id`` on ``day`` if their total is below ``limit``:
        the new total, or None (nothing counted) when it is not. Atomic: of two
        processes taking the last call, one gets it."""
        ...

    async def api_calls(self, day: str, user_ids: Collection[str]) -> dict[str, int]:
        """The users' totals on ``day`` (0 for a user without calls)."""
        ...

    async def purge_api_calls(self, before: str) -> int:
        """Delete the counts of the days before ``before``; how many rows went."""
        ...
