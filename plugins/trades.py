"""``trades``: Trade executions (deals) of one user's account (seed 001, "Trade Executions")."""

from __future__ import annotations

from fxgate import hookimpl
from fxgate.node import Node
from fxgate.plugins.channel import Channel, Filter


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


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [TradesChannel(node)]
