"""``volatility``: low, medium or high, from each symbol's recent range.

The range of a symbol's mid price over the last ``window`` seconds, as a percentage of
its latest mid; the label is the median over the symbols of the message. A sample a
second per symbol bounds the memory (300 floats a symbol for five minutes), and the
per-tick cost is one comparison. Under 0.05 % is ``low`` (a quiet major pair), over
0.2 % is ``high`` (news), in between ``medium``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from statistics import median

LOW, HIGH = 0.05, 0.2


class VolatilityMeter:
    def __init__(self, window: float = 300.0) -> None:
        self.window = window
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def observe(self, symbol: str, mid: float, ts: float) -> None:
        q = self._samples.get(symbol)
        if q is None:
            q = self._samples[symbol] = deque()
        if q and ts - q[-1][0] < 1.0:
            return
        q.append((ts, mid))
        while q and ts - q[0][0] > self.window:
            q.popleft()

    def range_percent(self, symbol: str) -> float | None:
        q = self._samples.get(symbol)
        if not q:
            return None
        mids = [m for _, m in q]
        last = mids[-1]
        return None if last <= 0 else (max(mids) - min(mids)) / last * 100

    def label(self, symbols: Iterable[str]) -> str:
        ranges = [r for r in (self.range_percent(s) for s in symbols) if r is not None]
        if not ranges:
            return "low"
        m = median(ranges)
        return "low" if m < LOW else "high" if m > HIGH else "medium"
