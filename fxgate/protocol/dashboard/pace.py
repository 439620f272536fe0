"""When a tier may send its next market batch: at once while under its rate.

A tier's ``market_data_per_second`` used to be a minimum spacing (one batch, then
nothing for ``1/rate`` seconds), so a tick arriving soon after a batch waited out the
rest of the period although the tier was far below its rate: at 200 batches a second
and 170 ticks a second, nearly the whole 5 ms at p99. Here a batch goes out as soon as
the tick is in, and ticks are coalesced (latest per symbol) only while the tier is
over its budget:

* a token bucket of ``rate`` a second holding a tenth of a second's worth (at least
  one batch) absorbs the random bunching of ticks, and paces an overloaded tier evenly
  (one batch every ``1/rate`` s) rather than in bursts;
* a sliding one-second window (:class:`~fxgate.protocol.dashboard.budget.SendBudget`)
  keeps the promise a client can measure: never more than ``rate`` batches (rounded
  down) in any one second, the bucket's burst included.

A tier below one batch a second has a burst of one: one batch, then the next after
``1/rate`` seconds, as before.
"""

from __future__ import annotations

from fxgate.protocol.dashboard.budget import SendBudget

#: The bucket holds this many seconds' worth of batches (at least one).
BURST_SECONDS = 0.1
#: Timers fire at a float sum that may round just short of the time asked for.
_SLACK = 1e-6


class MarketPace:
    """The bucket kept as the time it would be empty again (GCRA's "theoretical
    arrival time"), not as a fractional count: absolute times do not lose a token to
    float rounding, so a timer set for the wait always finds the batch allowed."""

    __slots__ = ("_interval", "_tat", "_window", "burst", "rate")

    def __init__(self, per_second: float) -> None:
        self.rate = per_second
        self.burst = max(1, int(per_second * BURST_SECONDS))
        self._interval = 1.0 / per_second
        self._tat = float("-inf")
        self._window = SendBudget(int(per_second)) if per_second >= 1 else None

    def wait(self, now: float) -> float:
        """Seconds until the next batch may go; 0: now."""
        allowed = self._tat - (self.burst - 1) * self._interval
        wait = 0.0 if now >= allowed - _SLACK else allowed - now
        if self._window is not None:
            wait = max(wait, self._window.wait(now, 1))
        return wait

    def spend(self, now: float) -> None:
        """A batch went out now (after ``wait`` said 0)."""
        self._tat = max(self._tat, now) + self._interval
        if self._window is not None:
            self._window.record(now, 1)
