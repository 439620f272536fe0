"""``trades``: Trade executions (deals) of one user's account (seed 001, "Trade Executions")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fxgate import hookimpl
from fxgate.domain.events import Event
from fxgate.domain.trading import Deal
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filter
from fxgate.services.presenters import trade_payload


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
    required_fields = ("executionId", "symbol", "action", "volume")

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        if not isinstance(data, Deal):
            return super().payload(event)
        trading = self.node.trading if self.node else None
        position = trading.open_position(data.user_id, data.position_ticket) if trading else None
        return trade_payload(data, position)


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [TradesChannel(node)]
