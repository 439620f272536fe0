"""``/api/v1/health`` in seed 004's shape: ``{status, timestamp, version, components}``.

Seed 004's clients read ``status`` at the top level, so this one endpoint answers
without the seed 003 envelope. It reads the same report as the operator's ``/health``
(which keeps its own shape), so a dashboard and a load balancer agree.
"""

from __future__ import annotations

from typing import Literal

from fxgate.domain.timefmt import iso_ms
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.models import ResponseModel

Status = Literal["healthy", "degraded", "unhealthy", "starting"]

_STATUS: dict[str, Status] = {
    "HEALTHY": "healthy",
    "DEGRADED": "degraded",
    "UNHEALTHY": "unhealthy",
}


class HealthOut(ResponseModel):
    status: Status
    timestamp: str
    version: str
    components: dict[str, str]


class ApiHealthHandler(ApiHandler):
    path = "/health"
    prefixes = ("/api/v1",)
    tag = "system"

    @op.get(
        summary="Service health (seed 004); 503 unless serving with no component down",
        response=HealthOut,
        role=None,
        envelope=False,
        errors=(503,),
    )
    async def health(self) -> op.Reply[HealthOut]:
        report = self.node.health.report
        serving = self.node.health.ready and not self.node.stopping
        status: Status = _STATUS.get(report.status, "starting") if serving else "starting"
        if self.node.stopping:
            status = "unhealthy"
        out = HealthOut(
            status=status,
            timestamp=iso_ms(),
            version=self.node.version,
            components={name: value.lower() for name, value in report.components.items()},
        )
        return op.Reply(out, status=200 if status in ("healthy", "degraded") else 503)


HANDLERS: tuple[type[ApiHandler], ...] = (ApiHealthHandler,)
