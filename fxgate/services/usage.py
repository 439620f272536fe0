"""What each user used today (UTC): REST calls, executions, rejections, signals.

Seed 000's ``usage`` and ``performance`` figures (``api_calls_remaining``,
``executions_today``, ``execution_success_rate``) are counted here as they happen: one
dict increment per fill or signal, nothing on the tick path. A day is a UTC calendar
day, like the analytics periods. REST calls are the daily quota and are counted in the
store, shared by every process and kept across restarts (:mod:`fxgate.services.quota`);
the other figures are this process's own and start again at midnight and on a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fxgate.services.quota import ApiQuota, LocalUsage


@dataclass(slots=True)
class DayCounts:
    executions: int = 0
    rejections: int = 0
    signals: int = 0


class UsageMeter:
    """Per-user counters for the current UTC day, and the same figures for everyone."""

    #: Past this many users in one day, the ones with nothing counted are dropped first.
    MAX_USERS = 100_000

    def __init__(
        self, clock: Callable[[], float] = time.time, quota: ApiQuota | None = None
    ) -> None:
        self._clock = clock
        #: The daily REST quota (in the store; in memory when built without one).
        self.quota = quota if quota is not None else ApiQuota(LocalUsage(), clock)
        self._day = self._today()
        self._users: dict[str, DayCounts] = {}
        self.total = DayCounts()

    def _today(self) -> int:
        return int(self._clock() // 86_400)

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day = day
            self._users.clear()
            self.total = DayCounts()

    def _counts(self, user_id: str) -> DayCounts:
        self._roll()
        counts = self._users.get(user_id)
        if counts is None:
            if len(self._users) >= self.MAX_USERS:
                self._users = {u: c for u, c in self._users.items() if c.executions or c.signals}
            counts = self._users[user_id] = DayCounts()
        return counts

    def today(self, user_id: str) -> DayCounts:
        """The user's counts so far today (a copy)."""
        c = self._counts(user_id)
        return DayCounts(c.executions, c.rejections, c.signals)

    async def api_call(self, user_id: str, quota: int) -> int | None:
        """Count one REST request against ``quota`` (0: none). None when allowed, else
        whole seconds until the quota starts again (next UTC midnight); a refused
        request is not counted."""
        return await self.quota.hit(user_id, quota)

    def remaining(self, user_id: str, quota: int) -> int | None:
        """REST requests left today under ``quota``; None when there is no quota."""
        return self.quota.remaining(user_id, quota)

    def execution(self, user_id: str) -> None:
        self._counts(user_id).executions += 1
        self.total.executions += 1

    def rejection(self, user_id: str) -> None:
        self._counts(user_id).rejections += 1
        self.total.rejections += 1

    def signal(self, user_id: str) -> None:
        self._counts(user_id).signals += 1
        self.total.signals += 1

    def success_rate(self) -> float | None:
        """Fills / (fills + rejections) today, across users; None before either."""
        self._roll()
        done = self.total.executions + self.total.rejections
        return None if not done else self.total.executions / done
