"""``analytics``: Performance analytics of one user's trading (seed 001, "Analytics Updates")."""

from __future__ import annotations

from fxgate import hookimpl
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filter


class AnalyticsChannel(Channel):
    name = "analytics"
    message_type = "analytics"
    scope = "user"
    filters = {
        "type": Filter("type", "PERFORMANCE_UPDATE or PERFORMANCE_SUMMARY"),
        "period": Filter("period", "DAY, WEEK, MONTH or ALL"),
    }
    description = "Performance analytics"
    required_fields = ("type",)


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [AnalyticsChannel(node)]
