"""Seed 000's ``signal_generation_ms``: the producer's ``generationMs``, else the signal's
age when published, as the median of the recent signals; null before the first.

In memory for the rule, then end to end: signals published over ``POST /publish`` show
in a dashboard's ``system_metrics``.
"""

from __future__ import annotations

import time
from typing import Any

from fxgate.services.signal_timing import SignalTiming
from tests.conftest import Daemons
from tests.dashboard_client import dashboard
from tests.test_signals_channel import as_stored, live_signal, seed_signal
from tests.trading_helpers import Admin, Trader, unique

NOON = 1_705_752_000.0  # 2024-01-20 12:00 UTC


def at(seconds_before_noon: float) -> str:
    t = NOON - seconds_before_noon
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def test_the_producers_figure_else_the_age_and_the_median_of_the_recent() -> None:
    timing = SignalTiming(lambda: NOON, size=3)
    assert timing.median_ms() is None
    timing.observe("@public", {"generationMs": 120, "timestamp": at(60)})
    assert timing.median_ms() == 120.0  # the producer's figure wins over the age
    timing.observe("@public", {"timestamp": at(0.25)})  # none given: its age, 250 ms
    timing.observe("u1", {"generationMs": 80.5, "timestamp": at(0)})
    assert timing.median_ms() == 120.0
    timing.observe("@public", {"generationMs": 300})  # the oldest (120) drops out
    assert timing.median_ms() == 250.0


def test_what_is_no_generation_time_is_left_out() -> None:
    timing = SignalTiming(lambda: NOON)
    timing.observe("@public", {"timestamp": at(2 * 3600)})  # re-published hours later
    timing.observe("@public", {"timestamp": "noon"})
    timing.observe("@public", {"generationMs": -5})
    timing.observe("@public", {"generationMs": True})
    assert timing.median_ms() is None
    timing.observe("@public", {"timestamp": at(-1)})  # a producer clock ahead: 0, not negative
    assert timing.median_ms() == 0.0


async def metrics(c: Any, want: Any) -> dict[str, Any]:
    msg = await c.wait_for(
        lambda m: m["type"] == "system_metrics" and want(m["data"]["performance"]), timeout=10
    )
    performance: dict[str, Any] = msg["data"]["performance"]
    return performance


async def test_published_signals_show_in_the_dashboards_system_metrics(
    make_daemon: Daemons,
) -> None:
    d = make_daemon.start(quiet=True, FXGATE_DASHBOARD_METRICS_INTERVAL="0.3")
    admin, viewer = Admin(d), Trader.issued(d)
    c = await dashboard(d, viewer.token)
    signals = await viewer.socket("signals")
    async with c:
        first = await c.type("system_metrics")
        assert first["data"]["performance"]["signal_generation_ms"] is None

        # no generationMs: the age of the signal, stamped 1.5 s ago by its producer
        made = time.time() - 1.5
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(made)) + "Z"
        sig = seed_signal(unique("sig_"), timestamp=stamp)
        assert admin.publish({"channel": "signals", "data": sig}).status_code == 200
        got = await metrics(c, lambda p: p["signal_generation_ms"] is not None)
        assert 1500 <= got["signal_generation_ms"] < 60_000

        # two that say how long they took: the median of the three is theirs
        for ms in (95, 105):
            sig = seed_signal(unique("sig_"), generationMs=ms)
            assert admin.publish({"channel": "signals", "data": sig}).status_code == 200
            assert await live_signal(signals, sig["uuid"]) == as_stored(sig)  # kept as sent
        got = await metrics(c, lambda p: p["signal_generation_ms"] == 105.0)
        assert set(got) == {
            "data_latency_ms",
            "signal_generation_ms",
            "execution_success_rate",
            "uptime_percentage",
        }
    await signals.close()

    # a dashboard opened now shows it in its first system_metrics
    late = await dashboard(d, Trader.issued(d).token)
    async with late:
        m = await late.type("system_metrics")
        assert m["data"]["performance"]["signal_generation_ms"] == 105.0
