"""``positions``: open positions and their P&L, scoped to their owner.

Seed 001, "Position Updates".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fxgate.domain.trading import Position
from fxgate.plugins.api import (
    Channel,
    Event,
    Filter,
    Filters,
    PluginAPI,
    Principal,
    TradingReads,
    hookimpl,
    position_payload,
)


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
    #: A trading stream: its history outlives restarts and nodes (Redis or the store).
    history_ttl = 600.0
    required_fields = ("ticket", "symbol", "type", "volume")

    def __init__(self, trading: TradingReads) -> None:
        super().__init__()
        self.trading = trading

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        if not isinstance(data, Position):
            return super().payload(event)
        return position_payload(data, self.trading.latest_account(data.user_id))

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        """The user's open positions."""
        account = await self.trading.account(principal.user_id)
        positions = await self.trading.positions(principal.user_id)
        return [position_payload(p, account) for p in positions]


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [PositionsChannel(api.trading)]
