"""What each user used today (UTC): REST calls, executions, rejections, signals.

Seed 000's ``usage`` and ``performance`` figures (``api_calls_remaining``,
``executions_today``, ``execution_success_rate``) are counted here, in memory, as they
happen: one dict increment per REST request or fill, nothing on the tick path. A day
is a UTC calendar day, like the analytics periods; the counters start again at
midnight and after a restart (the daily REST quota then starts afresh too, which errs
on the side of the user).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class DayCounts:
    api_calls: int = 0
    executions: int = 0
    rejections: int = 0
    signals: int = 0


class UsageMeter:
    """Per-user counters for the current UTC day, and the same figures for everyone."""

    #: Past this many users in one day, the ones with no REST call are dropped first.
    MAX_USERS = 100_000

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
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
                self._users = {u: c for u, c in self._users.items() if c.api_calls}
            counts = self._users[user_id] = DayCounts()
        return counts

    def today(self, user_id: str) -> DayCounts:
        """The user's counts so far today (a copy)."""
        c = self._counts(user_id)
        return DayCounts(c.api_calls, c.executions, c.rejections, c.signals)

    def api_call(self, user_id: str, quota: int) -> int | None:
        """Count one REST request against ``quota`` (0: none). None when allowed, else
        whole seconds until the quota starts again (next UTC midnight); a refused
        request is not counted."""
        counts = self._counts(user_id)
        if quota and counts.api_calls >= quota:
            return max(1, int((self._day + 1) * 86_400 - self._clock()))
        counts.api_calls += 1
        self.total.api_calls += 1
        return None

    def remaining(self, user_id: str, quota: int) -> int | None:
        """REST requests left today under ``quota``; None when there is no quota."""
        if not quota:
            return None
        return max(0, quota - self._counts(user_id).api_calls)

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
