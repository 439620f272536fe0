"""Per-connection and per-user rate limits, as small clock-injected objects."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    """``rate`` messages per second with a burst of ``rate``."""

    __slots__ = ("_clock", "_last", "_tokens", "capacity", "rate")

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = rate
        self._tokens = rate
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class SlidingWindowCounter:
    """At most ``limit`` events per ``window`` seconds per key (connections per user)."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def hit(self, key: str) -> bool:
        """Record an event; False (and not recorded) when over the limit."""
        now = self._clock()
        q = self._events.get(key)
        if q is None:
            q = self._events[key] = deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        if len(self._events) > 10_000:
            self._sweep(now)
        return True

    def _sweep(self, now: float) -> None:
        for key in [k for k, q in self._events.items() if not q or now - q[-1] >= self.window]:
            del self._events[key]
