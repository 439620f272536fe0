"""``system``: the gateway's health (seed 001, "System Status").

Sent on subscribe, whenever a component's status changes, and every
``system.status_interval`` seconds as a heartbeat a dashboard can watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from fxgate import hookimpl
from fxgate.domain.events import Event
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filters, Principal
from fxgate.services.health import HealthReport


class SystemChannel(Channel):
    name = "system"
    message_type = "system"
    scope = "public"
    history_size = 10
    description = "Gateway and component health"
    required_fields = ("status",)

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        return data.to_payload() if isinstance(data, HealthReport) else super().payload(event)

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        assert self.node is not None
        return [self.node.health.report.to_payload()]


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [SystemChannel(node)]


@hookimpl
def startup(node: Node) -> None:
    def announce(report: HealthReport) -> None:
        node.publish(Event("system", report))

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(node.settings.system.status_interval)
            announce(node.health.report)

    node.health.on_change(announce)
    node.spawn(heartbeat(), name="system-heartbeat")
