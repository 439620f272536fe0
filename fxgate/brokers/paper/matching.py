"""When a working order may execute: the crossing rules, as MT5 applies them.

A buy is done at the ask and a sell at the bid, so each rule reads the side it would
be done at: a buy limit fills once ``ask <= price``, a sell limit once ``bid >= price``;
a buy stop triggers once ``ask >= stop``, a sell stop once ``bid <= stop``. A triggered
stop is a market order; a triggered stop-limit is a limit order at its ``price``.

Positions close at the other side: a buy position at the bid (stop loss when
``bid <= sl``, take profit when ``bid >= tp``), a sell position at the ask (stop loss
when ``ask >= sl``, take profit when ``ask <= tp``).
"""

from __future__ import annotations

from fxgate.brokers.paper.margin import BidAsk
from fxgate.domain.trading import Order, OrderReason, OrderType, Position, Side


def limit_reached(order: Order, prices: BidAsk) -> bool:
    assert order.price is not None
    if order.side is Side.BUY:
        return prices.ask <= order.price
    return prices.bid >= order.price


def stop_reached(order: Order, prices: BidAsk) -> bool:
    assert order.stop_price is not None
    if order.side is Side.BUY:
        return prices.ask >= order.stop_price
    return prices.bid <= order.stop_price


def executes_as_market(order: Order) -> bool:
    """A market order's waiting remainder, or a stop order that has triggered."""
    return order.type is OrderType.MARKET or (
        order.type is OrderType.STOP and order.triggered_at is not None
    )


def executes_as_limit(order: Order) -> bool:
    return order.type is OrderType.LIMIT or (
        order.type is OrderType.STOP_LIMIT and order.triggered_at is not None
    )


def stop_hit(position: Position, prices: BidAsk) -> OrderReason | None:
    """Whether the price has reached the position's stop loss or take profit."""
    sl, tp = position.stop_loss, position.take_profit
    if position.side is Side.BUY:
        if sl is not None and prices.bid <= sl:
            return OrderReason.STOP_LOSS
        if tp is not None and prices.bid >= tp:
            return OrderReason.TAKE_PROFIT
        return None
    if sl is not None and prices.ask >= sl:
        return OrderReason.STOP_LOSS
    if tp is not None and prices.ask <= tp:
        return OrderReason.TAKE_PROFIT
    return None
