"""``analytics``: Performance analytics of one user's trading (seed 001, "Analytics Updates")."""

from __future__ import annotations

from fxgate.plugins.api import Channel, Filter, PluginAPI, hookimpl


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
def register_channels(api: PluginAPI) -> list[Channel]:
    return [AnalyticsChannel(api)]
