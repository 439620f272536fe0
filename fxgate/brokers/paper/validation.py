"""Checks of volumes, prices and stop levels, with the messages a trader can act on.

Every failure here is a ``ValidationError`` (seed 003's ``VALIDATION_ERROR``): the request
itself is wrong, whatever the state of the account.
"""

from __future__ import annotations

from decimal import Decimal

from fxgate.brokers.paper.margin import BidAsk
from fxgate.domain.errors import ValidationError
from fxgate.domain.market import SymbolSpec
from fxgate.domain.money import round_price
from fxgate.domain.trading import OrderRequest, OrderType, Side, check_volume

__all__ = [
    "check_stops",
    "check_trigger_not_reached",
    "check_volume",
    "order_prices",
    "price_or_none",
]


def price_or_none(spec: SymbolSpec, value: Decimal | None, name: str) -> Decimal | None:
    """A positive price rounded to the symbol's digits; ``None`` and ``0`` mean "none"."""
    if value is None or value == 0:
        return None
    if not value.is_finite() or value < 0:
        raise ValidationError(f"{name} must be a positive price")
    return round_price(value, spec.digits)


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
