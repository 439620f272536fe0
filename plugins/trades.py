"""``trades``: Trade executions (deals) of one user's account (seed 001, "Trade Executions")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fxgate.domain.trading import Deal
from fxgate.plugins.api import (
    Channel,
    Event,
    Filter,
    PluginAPI,
    TradingReads,
    hookimpl,
    trade_payload,
)


class TradesChannel(Channel):
    name = "trades"
    message_type = "trade"
    scope = "user"
    filters = {
        "symbol": Filter("symbol", "One symbol or a list"),
        "strategyId": Filter("strategyId", "The strategy that placed it"),
        "connectionId": Filter("connectionId", "The broker connection it came from"),
    }
    description = "Trade executions"
    #: A trading stream: its history outlives restarts and nodes (Redis or the store).
    history_ttl = 600.0
    records = True  # each event a record of its own, not the new state of something
    required_fields = ("executionId", "symbol", "action", "volume")

    def __init__(self, trading: TradingReads) -> None:
        super().__init__()
        self.trading = trading

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        if not isinstance(data, Deal):
            return super().payload(event)
        position = self.trading.open_position(data.user_id, data.position_ticket)
        return trade_payload(data, position)


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [TradesChannel(api.trading)]
