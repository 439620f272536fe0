"""``orders``: Order status changes, scoped to their owner (seed 001, "Order Status Updates")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fxgate.domain.trading import Order
from fxgate.plugins.api import (
    Channel,
    Event,
    Filter,
    Filters,
    PluginAPI,
    Principal,
    TradingReads,
    hookimpl,
    order_payload,
)


class OrdersChannel(Channel):
    name = "orders"
    message_type = "order"
    scope = "user"
    filters = {
        "symbol": Filter("symbol", "One symbol or a list"),
        "strategyId": Filter("strategyId", "The strategy that placed it"),
        "connectionId": Filter("connectionId", "The broker connection it came from"),
    }
    description = "Order status updates"
    #: A trading stream: its history outlives restarts and nodes (Redis or the store).
    history_ttl = 600.0
    required_fields = ("orderId", "symbol", "status")

    def __init__(self, trading: TradingReads) -> None:
        super().__init__()
        self.trading = trading

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        return order_payload(data) if isinstance(data, Order) else super().payload(event)

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        """The user's working (pending) orders."""
        return [order_payload(o) for o in await self.trading.pending_orders(principal.user_id)]


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [OrdersChannel(api.trading)]
