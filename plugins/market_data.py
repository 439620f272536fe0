"""``market-data``: live quotes of the broker's symbols (seed 001, "Market Data").

Public and keyed by symbol, so a tick reaches its subscribers through one index
lookup; conflated for slow clients (the latest price is what matters); a new
subscriber first gets the latest quote of each symbol it asked for.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from fxgate.domain.errors import ValidationError
from fxgate.domain.market import Quote
from fxgate.domain.timefmt import iso_ms
from fxgate.plugins.api import (
    Channel,
    Event,
    Filter,
    Filters,
    MarketReads,
    PluginAPI,
    Principal,
    hookimpl,
)


def quote_payload(q: Quote) -> dict[str, Any]:
    """The seed 001 fields; a stale quote (prices stopped arriving) adds ``stale`` and
    ``age`` in seconds since its tick, so it is never taken for a new price."""
    payload = {
        "symbol": q.symbol,
        "bid": q.bid,
        "ask": q.ask,
        "last": q.last,
        "volume": q.volume,
        "spread": q.spread_points,
        "timestamp": iso_ms(q.ts),
        "change": q.change,
        "changePercent": q.change_percent,
        "dayHigh": q.day_high,
        "dayLow": q.day_low,
        "open": q.open,
        "close": q.close,
    }
    if q.stale:
        payload["stale"] = True
        payload["age"] = round(max(0.0, time.time() - q.ts), 3)
    return payload


class MarketDataChannel(Channel):
    name = "market-data"
    message_type = "market_data"
    scope = "public"
    filters = {"symbol": Filter("symbol", 'One symbol or a list, e.g. ["EURUSD","XAUUSD"]')}
    key_filter = "symbol"
    conflate = True
    history_size = 0  # the snapshot (latest quote) is the recovery
    description = "Live bid/ask quotes with day statistics"
    required_fields = ("symbol", "bid", "ask")

    def __init__(self, market: MarketReads) -> None:
        super().__init__()
        self.market = market

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        return quote_payload(data) if isinstance(data, Quote) else super().payload(event)

    def normalize_filters(self, raw: Any) -> dict[str, frozenset[str]]:
        filters = super().normalize_filters(raw)
        if "symbol" in filters:
            unknown = sorted(filters["symbol"] - set(self.market.symbols))
            if unknown:
                raise ValidationError(
                    "Unknown symbol",
                    field="filters.symbol",
                    reason="unknown symbol",
                    details={"channel": self.name, "symbols": unknown},
                )
        return filters

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        symbols = sorted(filters["symbol"]) if "symbol" in filters else None
        return [quote_payload(q) for q in self.market.latest(symbols)]


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [MarketDataChannel(api.market)]
