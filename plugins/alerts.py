"""``alerts``: Risk and system alerts addressed to one user (seed 001, "System Alerts")."""

from __future__ import annotations

from fxgate import hookimpl
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filter


class AlertsChannel(Channel):
    name = "alerts"
    message_type = "alert"
    scope = "user"
    filters = {
        "type": Filter("type", "Alert type, e.g. RISK_LIMIT"),
        "severity": Filter("severity", "INFO, WARNING or CRITICAL"),
    }
    description = "Alerts and notifications"
    required_fields = ("type", "severity", "title", "message")


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [AlertsChannel(node)]
