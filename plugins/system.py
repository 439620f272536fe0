"""``system``: the gateway's health (seed 001, "System Status").

Sent on subscribe, whenever a component's status changes, and every
``system.status_interval`` seconds as a heartbeat a dashboard can watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from fxgate.plugins.api import (
    Channel,
    Event,
    Filters,
    HealthReads,
    HealthReport,
    PluginAPI,
    Principal,
    hookimpl,
)


class SystemChannel(Channel):
    name = "system"
    message_type = "system"
    scope = "public"
    history_size = 10
    node_local = True  # each node reports its own health
    description = "Gateway and component health"
    required_fields = ("status",)

    def __init__(self, health: HealthReads) -> None:
        super().__init__()
        self.health = health

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        return data.to_payload() if isinstance(data, HealthReport) else super().payload(event)

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        return [self.health.report.to_payload()]


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [SystemChannel(api.health)]


@hookimpl
def startup(api: PluginAPI) -> None:
    def announce(report: HealthReport) -> None:
        api.publish(Event("system", report))

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(api.settings.system.status_interval)
            announce(api.health.report)

    api.health.on_change(announce)
    api.spawn(heartbeat(), name="system-heartbeat")
