"""Component health: polled checks, a cached report, and listeners told on change.

``GET /health`` and the ``system`` channel read the same report, so a dashboard and a
load balancer never disagree about whether the broker is up.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fxgate.domain.timefmt import iso_ms
from fxgate.services.activity import NoActivity
from fxgate.services.ports.activity import ActivityLog, Level

log = logging.getLogger(__name__)

HEALTHY, DEGRADED, DOWN = "HEALTHY", "DEGRADED", "DOWN"
Check = Callable[[], Awaitable[str] | str]
_LEVELS: dict[str, Level] = {HEALTHY: "INFO", DEGRADED: "WARNING", DOWN: "ERROR"}
_WORDS = {HEALTHY: "up", DEGRADED: "degraded", DOWN: "down"}


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: str
    components: dict[str, str]
    message: str
    ts: float = field(default_factory=time.time)

    def to_payload(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "components": dict(self.components),
            "message": self.message,
            "timestamp": iso_ms(self.ts),
        }


class HealthMonitor:
    def __init__(
        self,
        *,
        interval: float = 2.0,
        check_timeout: float = 2.0,
        activity: ActivityLog | None = None,
    ) -> None:
        #: Tells admins' dashboards when a component (the broker connection) changes.
        self._activity = activity or NoActivity()
        self._checks: dict[str, Check] = {}
        self.interval = interval
        self.check_timeout = check_timeout
        self.report = HealthReport("STARTING", {}, "Starting")
        self._listeners: list[Callable[[HealthReport], None]] = []
        self.ready = False

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def on_change(self, fn: Callable[[HealthReport], None]) -> None:
        self._listeners.append(fn)

    async def _run_check(self, check: Check) -> str:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, self.check_timeout)
            return str(result) if result in (HEALTHY, DEGRADED, DOWN) else DOWN
        except Exception:
            return DOWN

    async def check(self) -> HealthReport:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_check(self._checks[n]) for n in names))
        components = dict(zip(names, results, strict=True))
        bad = [n for n, s in components.items() if s != HEALTHY]
        if any(components[n] == DOWN for n in bad):
            status = "UNHEALTHY"
        elif bad:
            status = DEGRADED
        else:
            status = HEALTHY
        message = (
            "All systems operational"
            if not bad
            else ("; ".join(f"{n} {components[n].lower()}" for n in bad))
        )
        report = HealthReport(status, components, message)
        changed = (report.status, report.components) != (
            self.report.status,
            self.report.components,
        )
        before = self.report.components
        self.report = report
        if changed:
            log.info("health changed", extra={"status": status, "components": components})
            for name, now in components.items():
                was = before.get(name)
                if was is not None and was != now:  # the first report is no change
                    self._activity.system(
                        _LEVELS[now],
                        f"{name.capitalize()} {_WORDS[now]} (was {was.lower()})",
                        "health",
                        component=name,
                        status=now,
                        previous=was,
                    )
            for fn in self._listeners:
                fn(report)
        return report

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()
