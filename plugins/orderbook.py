"""``orderbook``: the broker's depth of market by symbol (seed 004's order book).

Public and keyed by symbol; conflated (a newer book replaces an older one for a slow
client); a new subscriber first gets the current book. Updates are whole books, read
from the broker after each tick of a watched symbol (``fxgate.services.depth``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fxgate.domain.errors import FxgateError, ValidationError
from fxgate.domain.trading import OrderBook
from fxgate.plugins.api import (
    Channel,
    Event,
    Filter,
    Filters,
    MarketReads,
    PluginAPI,
    Principal,
    hookimpl,
    order_book_payload,
)


class OrderBookChannel(Channel):
    name = "orderbook"
    message_type = "orderbook"
    scope = "public"
    filters = {"symbol": Filter("symbol", 'One symbol or a list, e.g. ["BTCUSD"]')}
    key_filter = "symbol"
    conflate = True
    history_size = 0  # the snapshot (the current book) is the recovery
    description = "Depth of market: bids and asks as [price, lots], best first"
    required_fields = ("symbol", "bids", "asks")

    def __init__(self, market: MarketReads) -> None:
        super().__init__()
        self.market = market

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        return order_book_payload(data) if isinstance(data, OrderBook) else super().payload(event)

    def normalize_filters(self, raw: Any) -> dict[str, frozenset[str]]:
        filters = super().normalize_filters(raw)
        unknown = sorted(filters.get("symbol", frozenset()) - set(self.market.symbols))
        if unknown:
            raise ValidationError(
                "Unknown symbol",
                field="filters.symbol",
                reason="unknown symbol",
                details={"channel": self.name, "symbols": unknown},
            )
        return filters

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        symbols = sorted(filters["symbol"]) if "symbol" in filters else self.market.symbols
        books = []
        for symbol in symbols:
            try:
                books.append(order_book_payload(await self.market.order_book(symbol)))
            except FxgateError:
                continue  # no price yet: the first update brings the book
        return books


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [OrderBookChannel(api.market)]
