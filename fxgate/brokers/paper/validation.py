"""Checks of volumes, prices and stop levels, with the messages a trader can act on.

Every failure here is a ``ValidationError`` (seed 003's ``VALIDATION_ERROR``): the request
itself is wrong, whatever the state of the account.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from fxgate.brokers.paper.margin import BidAsk, exit_price
from fxgate.domain.errors import ValidationError
from fxgate.domain.market import SymbolSpec
from fxgate.domain.money import round_price
from fxgate.domain.trading import (
    Order,
    OrderChanges,
    OrderRequest,
    OrderType,
    Side,
    check_volume,
)

__all__ = [
    "apply_changes",
    "check_stops",
    "check_trigger_not_reached",
    "check_volume",
    "order_prices",
    "price_or_none",
]


#: No instrument trades above this; larger numbers are typing errors (and would overflow
#: the decimal context when quantised).
MAX_PRICE = Decimal(10) ** 9


def price_or_none(spec: SymbolSpec, value: Decimal | None, name: str) -> Decimal | None:
    """A positive price rounded to the symbol's digits; ``None`` and ``0`` mean "none"."""
    if value is None or value == 0:
        return None
    if not value.is_finite() or value < 0 or value > MAX_PRICE:
        raise ValidationError(f"{name} must be a positive price", details={"field": name})
    rounded = round_price(value, spec.digits)
    if rounded <= 0:
        # 1e-9 would round to 0.00000: a mistyped price, never "no price".
        raise ValidationError(
            f"{name} is below the symbol's smallest price step", details={"field": name}
        )
    return rounded


def order_prices(spec: SymbolSpec, request: OrderRequest) -> tuple[Decimal | None, Decimal | None]:
    """``(price, stop_price)`` of a new order, as ``Order`` keeps them.

    A stop order's trigger may come as ``price`` or ``stop_price`` and is kept in both.
    """
    price = price_or_none(spec, request.price, "price")
    stop = price_or_none(spec, request.stop_price, "stopPrice")
    if request.type is OrderType.MARKET:
        return None, None
    if request.type is OrderType.LIMIT:
        if price is None:
            raise ValidationError("A limit order needs a price")
        return price, None
    if request.type is OrderType.STOP:
        trigger = stop if stop is not None else price
        if trigger is None:
            raise ValidationError("A stop order needs a stop price")
        return trigger, trigger
    if price is None or stop is None:
        raise ValidationError("A stop-limit order needs a price and a stop price")
    return price, stop


def check_trigger_not_reached(side: Side, stop_price: Decimal, prices: BidAsk) -> None:
    """A stop whose trigger the market has already passed would fire at once: refused,
    as MT5 refuses it (retcode 10015, invalid price)."""
    if side is Side.BUY and stop_price <= prices.ask:
        raise ValidationError(
            f"A buy stop must be above the current ask {prices.ask}",
            details={"stopPrice": str(stop_price), "ask": str(prices.ask)},
        )
    if side is Side.SELL and stop_price >= prices.bid:
        raise ValidationError(
            f"A sell stop must be below the current bid {prices.bid}",
            details={"stopPrice": str(stop_price), "bid": str(prices.bid)},
        )


def check_stops(
    spec: SymbolSpec,
    side: Side,
    reference: Decimal,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
) -> None:
    """Stop loss and take profit on the right side of ``reference``, at least
    ``stops_level_points`` away (MT5 retcode 10016, invalid stops).

    ``reference`` is the price the position would close at now (bid for a buy, ask for a
    sell) for a position or market order, and the order's own price for a pending order.
    """
    gap = spec.point * spec.stops_level_points
    if side is Side.BUY:
        if stop_loss is not None and (stop_loss > reference - gap or stop_loss == reference):
            raise ValidationError(
                f"A buy's stop loss must be below {reference - gap}", details=_sd(reference)
            )
        if take_profit is not None and (take_profit < reference + gap or take_profit == reference):
            raise ValidationError(
                f"A buy's take profit must be above {reference + gap}", details=_sd(reference)
            )
    else:
        if stop_loss is not None and (stop_loss < reference + gap or stop_loss == reference):
            raise ValidationError(
                f"A sell's stop loss must be above {reference + gap}", details=_sd(reference)
            )
        if take_profit is not None and (take_profit > reference - gap or take_profit == reference):
            raise ValidationError(
                f"A sell's take profit must be below {reference - gap}", details=_sd(reference)
            )


def _sd(reference: Decimal) -> dict[str, str]:
    return {"reference": str(reference)}


def apply_changes(
    spec: SymbolSpec, order: Order, changes: OrderChanges, prices: BidAsk, now: float
) -> Order:
    """The pending order as modified, checked against the market as a new order would be.

    A stop order's trigger may be changed through ``price`` or ``stop_price``; only an
    untriggered stop-limit has a separate trigger to change; a market order's waiting
    rest has no price at all.
    """
    price, stop_price = order.price, order.stop_price
    new_price = price_or_none(spec, changes.price, "price")
    new_stop = price_or_none(spec, changes.stop_price, "stopPrice")
    if order.type is OrderType.MARKET and (new_price or new_stop):
        raise ValidationError("A market order has no price to change")
    if order.type is OrderType.STOP:
        trigger = new_stop or new_price
        if trigger is not None:
            price = stop_price = trigger
    else:
        price = new_price or price
        if new_stop is not None:
            if order.type is not OrderType.STOP_LIMIT or order.triggered_at is not None:
                raise ValidationError("Only an untriggered stop-limit order has a stop price")
            stop_price = new_stop
    volume = order.volume
    if changes.volume is not None:
        volume = changes.volume
        check_volume(spec, volume)
        if volume <= order.filled_volume:
            raise ValidationError("The volume must stay above what has already filled")
    sl, tp = order.stop_loss, order.take_profit
    if changes.stop_loss is not None:
        sl = price_or_none(spec, changes.stop_loss, "stopLoss")
    if changes.take_profit is not None:
        tp = price_or_none(spec, changes.take_profit, "takeProfit")
    reference = exit_price(order.side, prices) if price is None else price
    check_stops(spec, order.side, reference, sl, tp)
    if stop_price is not None and order.triggered_at is None:
        check_trigger_not_reached(order.side, stop_price, prices)
    return replace(
        order,
        price=price,
        stop_price=stop_price,
        volume=volume,
        stop_loss=sl,
        take_profit=tp,
        updated_at=now,
    )
