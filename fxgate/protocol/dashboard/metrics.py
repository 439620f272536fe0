"""``system_metrics``: the health monitor's components and measured figures.

``connection_status`` maps the health report (the one ``GET /health`` shows): ``mt5``
is the trading backend (``broker`` check; the paper broker when no terminal is
configured), ``api_gateway`` the overall status, ``trading_engine`` the broker and the
database together, ``notification_hub`` the bus. ``performance`` holds only measured
numbers: ``data_latency_ms`` the age of the last tick when the hub published it,
``signal_generation_ms`` the median over the recent signals of the producer's
``generationMs``, or else of the signal's age when published (null before the first
signal; ``fxgate.services.signal_timing``), ``execution_success_rate`` fills / (fills
+ refused orders) today (null before the first), ``uptime_percentage`` the share of
time since start that the gateway was not unhealthy. ``usage`` is per user (the REST
quota left today, null without a quota: the count in the store that every worker
shares, ``fxgate.services.quota``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fxgate.config.settings import TierSettings
from fxgate.services.health import DOWN, HEALTHY, HealthReport
from fxgate.services.usage import UsageMeter

_LINK = {HEALTHY: "connected", "DEGRADED": "degraded", DOWN: "disconnected"}
_STATE = {HEALTHY: "healthy", "DEGRADED": "degraded", DOWN: "down", "UNHEALTHY": "unhealthy"}


class Uptime:
    """Seconds not unhealthy since start, from the health monitor's changes."""

    def __init__(
        self, report: HealthReport, clock: Callable[[], float], started: float | None = None
    ) -> None:
        self._clock = clock
        #: The daemon's start (up until the first report it sees says otherwise).
        self.started = clock() if started is None else started
        self._since = self.started
        self._up = report.status != "UNHEALTHY"
        self._up_seconds = 0.0

    def on_change(self, report: HealthReport) -> None:
        now = self._clock()
        if self._up:
            self._up_seconds += now - self._since
        self._since = now
        self._up = report.status != "UNHEALTHY"

    def percentage(self) -> float:
        now = self._clock()
        up = self._up_seconds + (now - self._since if self._up else 0.0)
        total = now - self.started
        return 100.0 if total <= 0 else round(up / total * 100, 2)


def connection_status(report: HealthReport) -> dict[str, str]:
    c = report.components
    broker, database, bus = c.get("broker", DOWN), c.get("database", DOWN), c.get("bus", DOWN)
    engine = broker if broker != HEALTHY else database
    return {
        "mt5": _LINK.get(broker, "disconnected"),
        "api_gateway": _STATE.get(report.status, "degraded"),
        "trading_engine": _STATE.get(engine, "down"),
        "notification_hub": _STATE.get(bus, "down"),
    }


def metrics_data(
    *,
    report: HealthReport,
    uptime: Uptime,
    usage: UsageMeter,
    latency_ms: float | None,
    signal_ms: float | None = None,
    user_id: str,
    tier_name: str,
    tier: TierSettings,
) -> dict[str, Any]:
    today = usage.today(user_id)
    rate = usage.success_rate()
    return {
        "connection_status": connection_status(report),
        "performance": {
            "data_latency_ms": latency_ms,
            "signal_generation_ms": signal_ms,
            "execution_success_rate": None if rate is None else round(rate, 4),
            "uptime_percentage": uptime.percentage(),
        },
        "usage": {
            "signals_today": today.signals,
            "executions_today": today.executions,
            "api_calls_remaining": usage.remaining(user_id, tier.api_calls_per_day),
            "subscription_tier": tier_name,
        },
    }
