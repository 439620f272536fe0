"""``alerts``: Risk and system alerts addressed to one user (seed 001, "System Alerts")."""

from __future__ import annotations

from fxgate.plugins.api import Channel, Filter, PluginAPI, hookimpl


class AlertsChannel(Channel):
    name = "alerts"
    message_type = "alert"
    scope = "user"
    filters = {
        "type": Filter("type", "Alert type, e.g. RISK_LIMIT"),
        "severity": Filter("severity", "INFO, WARNING or CRITICAL"),
    }
    description = "Alerts and notifications"
    #: A trading stream: its history outlives restarts and nodes (Redis or the store).
    history_ttl = 600.0
    records = True  # each event a record of its own, not the new state of something
    required_fields = ("type", "severity", "title", "message")


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [AlertsChannel(api)]
