"""``orders``: Order status changes, scoped to their owner (seed 001, "Order Status Updates")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fxgate import hookimpl
from fxgate.domain.events import Event
from fxgate.domain.trading import Order
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filter, Filters, Principal
from fxgate.services.presenters import order_payload


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
    required_fields = ("orderId", "symbol", "status")

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        return order_payload(data) if isinstance(data, Order) else super().payload(event)

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        """The user's working (pending) orders."""
        trading = self.node.trading if self.node else None
        if trading is None:
            return ()
        return [order_payload(o) for o in await trading.pending_orders(principal.user_id)]


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [OrdersChannel(node)]
