"""``/market/symbols`` and ``/market/data`` (seed 003): what can be traded, and its chart.

Symbols carry seed 003's fields plus what an order form needs to be right the first time
(``digits``, ``contractSize``, ``volumeStep``). Quantities are in lots, as in MetaTrader.
Candles are the ones :mod:`fxgate.services.market_history` records from the live feed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import Field

from fxgate.domain.market import SymbolSpec
from fxgate.domain.timefmt import iso_ms
from fxgate.services import market_history
from fxgate.services.market import MarketService
from fxgate.services.ports.broker import BrokerCandles
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.models import QueryModel, ResponseModel
from fxgate.web.rest.parsing import field_error, invalid

Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]


class SymbolOut(ResponseModel):
    symbol: str
    name: str
    type: str = Field(description="forex | commodity | crypto | stock")
    base_asset: str
    quote_asset: str
    min_quantity: float = Field(description="Smallest order, in lots.")
    max_quantity: float = Field(description="Largest order, in lots.")
    tick_size: float = Field(description="The price's smallest step (MetaTrader's point).")
    active: bool
    digits: int
    contract_size: float = Field(description="Units of the base asset per lot.")
    volume_step: float = Field(description="Quantities are multiples of this, in lots.")


class MarketDataQuery(QueryModel):
    symbol: str = Field(min_length=1, max_length=32, description="e.g. EURUSD (or EUR/USD).")
    interval: Interval = "1m"
    limit: int = Field(100, ge=1, le=1000, description="The newest bars, at most 1000.")
    start_time: datetime | None = Field(
        None, description="ISO 8601 or epoch milliseconds; bars opening at or after it."
    )
    end_time: datetime | None = Field(
        None, description="ISO 8601 or epoch milliseconds; bars opening before it."
    )


class CandleOut(ResponseModel):
    timestamp: str = Field(description="The bar's opening time.")
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(description="Tick volume.")


class MarketDataOut(ResponseModel):
    symbol: str
    interval: Interval
    data: list[CandleOut]


def symbol_out(spec: SymbolSpec) -> SymbolOut:
    return SymbolOut(
        symbol=spec.symbol,
        name=spec.description,
        type=spec.kind,
        base_asset=spec.base,
        quote_asset=spec.quote,
        min_quantity=float(spec.volume_min),
        max_quantity=float(spec.volume_max),
        tick_size=float(spec.point),
        active=True,
        digits=spec.digits,
        contract_size=float(spec.contract_size),
        volume_step=float(spec.volume_step),
    )


def known_symbol(market: MarketService, value: str, field: str = "symbol") -> str:
    """The canonical name of a symbol a client typed (``eur/usd`` is EURUSD), or a
    VALIDATION_ERROR listing the ones that exist."""
    name = value.strip().upper().replace("/", "")
    if name not in market.source.specs:
        raise invalid(
            f"Unknown symbol {value!r}",
            [field_error(field, f"Unknown symbol; known: {', '.join(market.symbols)}", "symbol")],
        )
    return name


def check_symbols(market: MarketService, values: Iterable[str], field: str) -> list[str]:
    return [known_symbol(market, v, f"{field}.{i}") for i, v in enumerate(values)]


class MarketHandler(ApiHandler):
    def market(self) -> MarketService:
        return self.node.market


class SymbolsHandler(MarketHandler):
    path = "/market/symbols"
    tag = "market"

    @op.get(summary="The instruments this gateway trades", response=list[SymbolOut])
    async def list_symbols(self) -> list[SymbolOut]:
        return [symbol_out(spec) for spec in self.market().source.specs.values()]


class MarketDataHandler(MarketHandler):
    path = "/market/data"
    tag = "market"

    @op.get(
        summary="OHLC candles built from the live quotes (bid prices)",
        query=MarketDataQuery,
        response=MarketDataOut,
        description="Oldest first; the last bar is the one still forming.",
    )
    async def market_data(self, query: MarketDataQuery) -> MarketDataOut:
        symbol = known_symbol(self.market(), query.symbol)
        broker = self.node.broker
        if isinstance(broker, BrokerCandles):  # the terminal's own history (MT5)
            bars = await broker.candles(
                symbol, query.interval, query.start_time, query.end_time, query.limit
            )
        else:
            bars = await market_history.query_candles(
                self.node.store.candles,
                self.node.candles,
                symbol,
                query.interval,
                query.start_time,
                query.end_time,
                query.limit,
            )
        return MarketDataOut(
            symbol=symbol,
            interval=query.interval,
            data=[
                CandleOut(
                    timestamp=iso_ms(bar.open_time.timestamp()),
                    open=float(bar.open),
                    high=float(bar.high),
                    low=float(bar.low),
                    close=float(bar.close),
                    volume=float(bar.volume),
                )
                for bar in bars
            ],
        )


HANDLERS: tuple[type[ApiHandler], ...] = (SymbolsHandler, MarketDataHandler)
