"""The per-user send cap: at most ``limit`` messages in any one-second window.

A sliding window rather than a token bucket, so that "100 messages per second" holds
for every second a client could measure, including the first (a bucket would allow a
full burst plus its refill). A message to k connections of the user counts k; the
window keeps one (time, count) entry per message, not per connection, so a user with
many dashboards costs the same bookkeeping as a user with one.
"""

from __future__ import annotations

from collections import deque


class SendBudget:
    __slots__ = ("_sent", "_total", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sent: deque[tuple[float, int]] = deque()
        self._total = 0

    def _prune(self, now: float) -> None:
        sent = self._sent
        while sent and now - sent[0][0] >= 1.0:
            self._total -= sent.popleft()[1]

    def room(self, now: float) -> int:
        self._prune(now)
        return self.limit - self._total

    def take(self, now: float, n: int) -> bool:
        """Spend ``n`` sends now if the window has room for them."""
        n = min(n, self.limit)  # more connections than the cap: one message still goes
        if self.room(now) < n:
            return False
        self.record(now, n)
        return True

    def record(self, now: float, n: int) -> None:
        """Count sends that had to go regardless (a new connection's first messages)."""
        if n <= 0:
            return
        self._prune(now)
        self._sent.append((now, n))
        self._total += n

    def wait(self, now: float, n: int) -> float:
        """Seconds until ``n`` sends fit."""
        self._prune(now)
        over = self._total + min(n, self.limit) - self.limit
        if over <= 0:
            return 0.0
        for at, count in self._sent:
            over -= count
            if over <= 0:
                return max(0.001, at + 1.0 - now)
        return 1.0
