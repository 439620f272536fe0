"""The Redis hop meter (``fxgate.bus.hop``): in memory, then as ``/metrics`` shows it."""

from __future__ import annotations

import re

import httpx
import pytest

from fxgate.bus import hop as hop_module
from fxgate.bus.hop import BUCKETS, HopMeter
from tests.test_redis_bus import Cluster, alert, cluster, connect, publish_alert

__all__ = ["cluster"]  # the fixture, used by name


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_own_event_lands_in_the_bucket_of_its_hop() -> None:
    clock = Clock()
    meter = HopMeter(clock)
    meter.sent("n1-1")
    meter.sent("n1-2")
    clock.now = 0.0008
    meter.read()
    meter.arrived("n1-1")
    clock.now = 0.004
    meter.read()
    clock.now = 0.007  # the read's other events fanned out first: not the hop
    meter.arrived("n1-2")
    meter.arrived("n2-7")  # another node's event: not timed
    meter.arrived("n1-1")  # twice: timed once
    cumulative = dict(meter.cumulative())
    assert cumulative[repr(0.00075)] == 0
    assert cumulative[repr(0.001)] == 1
    assert cumulative[repr(0.003)] == 1
    assert cumulative[repr(0.005)] == 2
    assert cumulative["+Inf"] == 2 == meter.total
    assert abs(meter.sum - 0.0048) < 1e-9
    assert len(BUCKETS) + 1 == len(meter.cumulative())


def test_events_redis_never_brings_back_are_forgotten_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hop_module, "CAPACITY", 3)
    meter = HopMeter(Clock())
    for i in range(10):
        meter.sent(f"n1-{i}")
    meter.arrived("n1-0")  # long gone
    meter.arrived("n1-9")
    assert meter.total == 1
    assert len(meter._sent) == 2


def hop_count(text: str) -> float:
    m = re.search(r"^fxgate_bus_hop_seconds_count (\S+)$", text, re.M)
    assert m is not None, text
    return float(m.group(1))


async def test_metrics_show_the_hop_of_the_nodes_own_events_only(cluster: Cluster) -> None:
    a, b = cluster.start(2)
    user = "hop_user"
    clients = [await connect(n, user) for n in (a, b)]
    for c in clients:
        await c.subscribe("alerts")
    before_a = hop_count(httpx.get(a.url("/metrics")).text)
    before_b = hop_count(httpx.get(b.url("/metrics")).text)
    publish_alert(a, user, "timed")
    for c in clients:
        await alert(c, "timed")
        await c.close()
    text = httpx.get(a.url("/metrics")).text
    assert hop_count(text) >= before_a + 1
    assert 'fxgate_bus_hop_seconds_bucket{le="+Inf"}' in text
    # b fanned the alert out too, but it was a's event: b did not time it.
    assert hop_count(httpx.get(b.url("/metrics")).text) == before_b


def test_the_meter_expects_its_events_until_they_arrive_or_go_stale() -> None:
    """``expecting`` is what tells the frame writer to yield to the loop sooner: true
    while an own event is on its way, false once it arrived, and false (the event
    counted above the last bucket) once it is STALE rather than small chunks forever."""
    clock = Clock()
    meter = HopMeter(clock)
    assert not meter.expecting()
    meter.sent("n1-1")
    assert meter.expecting()
    clock.now = 0.0005
    meter.read()
    meter.arrived("n1-1")
    assert not meter.expecting()
    meter.sent("n1-2")  # Redis lost: it never comes back
    clock.now += hop_module.STALE
    assert not meter.expecting()
    assert meter.total == 2
    assert meter.counts[-1] == 1
    meter.read()
    meter.arrived("n1-2")  # very late after all: already counted, not twice
    assert meter.total == 2
