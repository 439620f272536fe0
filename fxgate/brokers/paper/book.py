"""The paper market's synthetic depth of market, and the liquidity it stands for.

The paper market has no other participants, so its depth is made up: ``levels`` levels a
side, one spread (at least one point) apart, each of ``level_volume`` lots. It serves
``order_book`` requests and bounds what one order can fill from one quote: the whole of
one side. An order fills at the top of the book (the ask for a buy, the bid for a sell)
however many levels its volume spans; the depth limits how much fills, not the price.
Each order sees the full depth: users do not take liquidity from one another.
"""

from __future__ import annotations

from decimal import Decimal

from fxgate.brokers.paper.margin import BidAsk
from fxgate.domain.market import SymbolSpec
from fxgate.domain.trading import BookLevel, OrderBook


def synthetic_book(
    spec: SymbolSpec,
    prices: BidAsk,
    ts: float,
    *,
    levels: int,
    level_volume: Decimal,
) -> OrderBook:
    step = max(prices.ask - prices.bid, spec.point)
    asks = tuple(BookLevel(prices.ask + step * i, level_volume) for i in range(levels))
    bids = tuple(BookLevel(prices.bid - step * i, level_volume) for i in range(levels))
    return OrderBook(symbol=spec.symbol, bids=bids, asks=asks, ts=ts)
