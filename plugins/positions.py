"""``positions``: open positions and their P&L, scoped to their owner.

Seed 001, "Position Updates".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fxgate import hookimpl
from fxgate.domain.events import Event
from fxgate.domain.trading import Position
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filter, Filters, Principal
from fxgate.services.presenters import position_payload


class PositionsChannel(Channel):
    name = "positions"
    message_type = "position"
    scope = "user"
    filters = {
        "symbol": Filter("symbol", "One symbol or a list"),
        "strategyId": Filter("strategyId", "The strategy that placed it"),
        "connectionId": Filter("connectionId", "The broker connection it came from"),
    }
    description = "Position updates and P&L"
    required_fields = ("ticket", "symbol", "type", "volume")

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        if not isinstance(data, Position):
            return super().payload(event)
        trading = self.node.trading if self.node else None
        account = trading.latest_account(data.user_id) if trading else None
        return position_payload(data, account)

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        """The user's open positions."""
        trading = self.node.trading if self.node else None
        if trading is None:
            return ()
        account = await trading.account(principal.user_id)
        return [position_payload(p, account) for p in await trading.positions(principal.user_id)]


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [PositionsChannel(node)]
