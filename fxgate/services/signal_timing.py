"""Seed 000's ``signal_generation_ms``: how long signals take, as fxgate can tell.

fxgate does not make signals (a signal engine publishes them), so it reports what it
observes, per signal:

- the producer's own figure when the signal carries one (``generationMs``, validated
  by the ``signals`` channel: a number from 0 to an hour);
- otherwise the signal's age when this node's hub published it: now minus the
  signal's ``timestamp`` (the producer's moment of generation), which is the
  producer's delay in handing it over plus fxgate's own (store write, bus). A
  signal published without ``timestamp`` is stamped on arrival, so its age is
  fxgate's share only; an age over an hour is a re-published or replayed signal,
  not a generation time, and is left out.

The figure reported is the median of the last :data:`RECENT` signals (one slow signal
does not make the gauge jump), in milliseconds with one decimal; None until a signal
was seen. It is fed by a hub tap on the ``signals`` channel, so every node sees every
signal, whichever node accepted it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fxgate.domain.signals import MAX_GENERATION_MS

#: Signals the median is taken over.
RECENT = 20


class SignalTiming:
    def __init__(self, clock: Callable[[], float] = time.time, size: int = RECENT) -> None:
        self._clock = clock
        self._recent: deque[float] = deque(maxlen=size)

    def observe(self, key: str, payload: Mapping[str, Any]) -> None:
        """A signal the hub publishes (the hub's tap: ``key`` is its stream)."""
        ms = _given(payload.get("generationMs"))
        if ms is None:
            ms = self._age_ms(payload.get("timestamp"))
        if ms is not None:
            self._recent.append(ms)

    def _age_ms(self, stamp: Any) -> float | None:
        if not isinstance(stamp, str):
            return None
        try:
            made = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            return None
        age = max(0.0, (self._clock() - made) * 1000)
        return age if age <= MAX_GENERATION_MS else None

    def median_ms(self) -> float | None:
        """The median of the recent signals' figures; None before the first signal."""
        if not self._recent:
            return None
        return round(statistics.median(self._recent), 1)


def _given(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    ms = float(value)
    return ms if math.isfinite(ms) and 0 <= ms <= MAX_GENERATION_MS else None
