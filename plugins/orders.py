"""``orders``: Order status changes, scoped to their owner (seed 001, "Order Status Updates")."""

from __future__ import annotations

from fxgate import hookimpl
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filter


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


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [OrdersChannel(node)]
