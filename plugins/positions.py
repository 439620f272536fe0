"""``positions``: open positions and their P&L, scoped to their owner.

Seed 001, "Position Updates".
"""

from __future__ import annotations

from fxgate import hookimpl
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filter


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


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [PositionsChannel(node)]
