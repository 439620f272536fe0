"""Sliding-window rate limits for the REST API, answering *when* to retry.

``protocol.limits.SlidingWindowCounter`` only says yes or no; a 429 must also carry
``Retry-After`` (seed 003's clients back off on it), so this limiter returns how many
seconds remain until the oldest counted request leaves the window.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key (a user, an email+IP)."""

    #: Past this many keys, idle ones are swept so memory stays bounded under a key flood.
    SWEEP_AT = 10_000

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> int | None:
        """Count a request; None when allowed, else whole seconds until one is allowed.

        A refused request is not counted, so a client that keeps retrying too early is
        not locked out for longer than the window.
        """
        now = self._clock()
        q = self._hits.get(key)
        if q is None:
            q = self._hits[key] = deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if len(q) >= self.limit:
            return max(1, math.ceil(q[0] + self.window - now))
        q.append(now)
        if len(self._hits) > self.SWEEP_AT:
            self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        idle = [k for k, q in self._hits.items() if not q or now - q[-1] >= self.window]
        for key in idle:
            del self._hits[key]
