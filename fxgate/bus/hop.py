"""How long a node's own events take to come back from Redis: the hop, measured per event.

With the Redis bus every event a node publishes reaches its own hub through Redis (the
script call out, the ``PUBLISH`` back on the subscription), so the time between the two is
exactly the latency the bus adds to everything this node's clients receive. It ends when
the subscription socket is read (``read``), not when the event's own fan-out begins: of
several events that come in one read, each waits for the fan-outs of those before it,
as it would with the local bus, where a tick published right after another is fanned out
after the other's fan-out; that wait is the node's work, not the hop's. Measured
here, in the node, it is one number per event; measured from the clients' side it is
the difference of two end-to-end percentiles, whose run-to-run spread at thousands of
clients (±10 ms) is larger than the hop itself. ``/metrics`` exports it as the
histogram ``fxgate_bus_hop_seconds``.

Per event, not per client: one clock read and one dict entry when it goes out, one
lookup when it comes back. Only events of this node are timed (another node's arrive
with ids this node never gave out). An event not back within ``STALE`` (Redis lost, the
event delivered here instead) is counted above the last bucket when ``expecting`` next
looks, and one is forgotten uncounted if ``CAPACITY`` newer ones are waiting.

The meter also tells the frame writer when the node's events are on their way back
(``expecting``): while they are, a flush pass yields to the loop after fewer sockets,
so that the subscription socket is read soon after Redis has written to it rather than
after a full chunk of sends (``fxgate.web.ws.writer``).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable

#: Upper bounds of the buckets, in seconds: fine below the issue's 1 ms / 3 ms targets.
BUCKETS = (
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
CAPACITY = 10_000
#: An event not back after this long is counted as lost (above the last bucket, ``sum``
#: growing by this much) and no longer waited for.
STALE = 1.0


class HopMeter:
    """Publish → the subscription's read that brings it back, per event, as bucket counts."""

    __slots__ = ("_clock", "_read_at", "_sent", "counts", "sum", "total")

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._sent: dict[str, float] = {}
        self._read_at = 0.0
        #: Per bucket of BUCKETS, then one for above the last: not cumulative.
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.total = 0

    def sent(self, msg_id: str) -> None:
        sent = self._sent
        if len(sent) >= CAPACITY:
            del sent[next(iter(sent))]  # the oldest: Redis did not bring it back
        sent[msg_id] = self._clock()

    def read(self) -> None:
        """The subscription socket is being read: what it brings arrived now. One clock
        read per read, however many events it carries."""
        self._read_at = self._clock()

    def arrived(self, msg_id: str) -> None:
        """An event of the last :meth:`read`."""
        began = self._sent.pop(msg_id, None)
        if began is None:
            return
        took = self._read_at - began
        self.counts[bisect_left(BUCKETS, took)] += 1
        self.sum += took
        self.total += 1

    def expecting(self) -> bool:
        """Whether an event of this node is on its way back from Redis. Once per chunk of
        a flush pass, never per client: one clock read, and the oldest entry looked at."""
        sent = self._sent
        if not sent:
            return False
        now = self._clock()
        while sent:
            oldest = next(iter(sent))
            if now - sent[oldest] < STALE:
                return True
            del sent[oldest]
            self.counts[-1] += 1
            self.sum += STALE
            self.total += 1
        return False

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus's ``(le, count)`` pairs, ``+Inf`` last."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(BUCKETS, self.counts, strict=False):
            running += count
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(self.total)))
        return out


__all__ = ["BUCKETS", "HopMeter"]
