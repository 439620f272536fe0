"""``market-trades``: the market's tape of executions by symbol (seed 004's ``trades``).

Not an account's deals (that is ``trades``): every print of the market, from brokers
that report them (``BrokerTape``: the paper market makes its tape from its ticks, MT5
from the terminal's trade ticks).
Public and keyed by symbol; never conflated, as a tape with holes misleads; no
snapshot (a tape starts now).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fxgate.domain.market import MarketTrade
from fxgate.domain.timefmt import iso_ms
from fxgate.plugins.api import Channel, Event, Filter, MarketReads, PluginAPI, hookimpl


def market_trade_payload(t: MarketTrade) -> dict[str, Any]:
    return {
        "id": t.id,
        "symbol": t.symbol,
        "price": t.price,
        "volume": t.volume,
        "side": t.side,
        "timestamp": iso_ms(t.ts),
    }


class MarketTradesChannel(Channel):
    name = "market-trades"
    message_type = "market_trade"
    scope = "public"
    filters = {"symbol": Filter("symbol", 'One symbol or a list, e.g. ["BTCUSD"]')}
    key_filter = "symbol"
    history_size = 100
    description = "The market's executions (price, lots, aggressor side)"
    required_fields = ("symbol", "price", "volume", "side")

    def __init__(self, market: MarketReads) -> None:
        super().__init__()
        self.market = market

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        if isinstance(data, MarketTrade):
            return market_trade_payload(data)
        return super().payload(event)


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [MarketTradesChannel(api.market)]
