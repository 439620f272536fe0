"""The per-user send cap: at most ``limit`` messages in any one-second window.

A sliding window rather than a token bucket, so that "100 messages per second" holds
for every second a client could measure, including the first (a bucket would allow a
full burst plus its refill). A message to k connections of the user costs k.
"""

from __future__ import annotations

from collections import deque


class SendBudget:
    __slots__ = ("_sent", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sent: deque[float] = deque()

    def _prune(self, now: float) -> None:
        sent = self._sent
        while sent and now - sent[0] >= 1.0:
            sent.popleft()

    def room(self, now: float) -> int:
        self._prune(now)
        return self.limit - len(self._sent)

    def take(self, now: float, n: int) -> bool:
        """Spend ``n`` sends now if the window has room for them."""
        n = min(n, self.limit)  # more connections than the cap: one message still goes
        if self.room(now) < n:
            return False
        self._sent.extend([now] * n)
        return True

    def record(self, now: float, n: int) -> None:
        """Count sends that had to go regardless (a new connection's first messages)."""
        self._prune(now)
        self._sent.extend([now] * n)

    def wait(self, now: float, n: int) -> float:
        """Seconds until ``n`` sends fit."""
        self._prune(now)
        n = min(n, self.limit)
        over = len(self._sent) + n - self.limit
        if over <= 0:
            return 0.0
        return max(0.001, self._sent[over - 1] + 1.0 - now)
