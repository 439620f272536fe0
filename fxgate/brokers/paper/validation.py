"""Checks of volumes, prices and stop levels, with the messages a trader can act on.

Two kinds of failure, as the broker port documents: a ``ValidationError`` naming the
field when the request itself is malformed whatever the market does (a negative price, a
limit order without one, a volume off the step), and a ``TradingError`` naming the field
when the market's current price or the broker's stops level refuses a well-formed request
(a buy stop at or below the ask, a stop loss on the wrong side: MT5 retcodes 10015 and
10016).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from fxgate.brokers.paper.margin import BidAsk, exit_price
from fxgate.domain.errors import invalid_field, refused
from fxgate.domain.market import SymbolSpec
from fxgate.domain.money import round_price
from fxgate.domain.trading import (
    Order,
    OrderChanges,
    OrderRequest,
    OrderType,
    Side,
    check_new_expiry,
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
        raise invalid_field(name, f"{name} must be a positive price", "not_positive")
    rounded = round_price(value, spec.digits)
    if rounded <= 0:
        # 1e-9 would round to 0.00000: a mistyped price, never "no price".
        raise invalid_field(name, f"{name} is below the symbol's smallest price step", "below_tick")
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
            raise invalid_field("price", "A limit order needs a price", "missing")
        return price, None
    if request.type is OrderType.STOP:
        trigger = stop if stop is not None else price
        if trigger is None:
            raise invalid_field("stopPrice", "A stop order needs a stop price", "missing")
        return trigger, trigger
    if price is None or stop is None:
        raise invalid_field(
            "price" if price is None else "stopPrice",
            "A stop-limit order needs a price and a stop price",
            "missing",
        )
    return price, stop


def check_trigger_not_reached(side: Side, stop_price: Decimal, prices: BidAsk) -> None:
    """A stop whose trigger the market has already passed would fire at once: refused,
    as MT5 refuses it (retcode 10015, invalid price)."""
    if side is Side.BUY and stop_price <= prices.ask:
        raise refused(
            f"A buy stop must be above the current ask {prices.ask}",
            "trigger_reached",
            field="stopPrice",
            ask=str(prices.ask),
        )
    if side is Side.SELL and stop_price >= prices.bid:
        raise refused(
            f"A sell stop must be below the current bid {prices.bid}",
            "trigger_reached",
            field="stopPrice",
            bid=str(prices.bid),
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
    below, above = reference - gap, reference + gap
    if side is Side.BUY:
        if stop_loss is not None and (stop_loss > below or stop_loss == reference):
            raise _stops("stopLoss", f"A buy's stop loss must be below {below}", reference, below)
        if take_profit is not None and (take_profit < above or take_profit == reference):
            raise _stops(
                "takeProfit", f"A buy's take profit must be above {above}", reference, above
            )
    else:
        if stop_loss is not None and (stop_loss < above or stop_loss == reference):
            raise _stops("stopLoss", f"A sell's stop loss must be above {above}", reference, above)
        if take_profit is not None and (take_profit > below or take_profit == reference):
            raise _stops(
                "takeProfit", f"A sell's take profit must be below {below}", reference, below
            )


def _stops(field: str, message: str, reference: Decimal, limit: Decimal) -> Exception:
    return refused(
        message, "invalid_stops", field=field, reference=str(reference), limit=str(limit)
    )


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
        raise invalid_field(
            "price" if new_price else "stopPrice",
            "A market order has no price to change",
            "not_applicable",
        )
    if order.type is OrderType.STOP:
        trigger = new_stop or new_price
        if trigger is not None:
            price = stop_price = trigger
    else:
        price = new_price or price
        if new_stop is not None:
            if order.type is not OrderType.STOP_LIMIT or order.triggered_at is not None:
                raise invalid_field(
                    "stopPrice",
                    "Only an untriggered stop-limit order has a stop price",
                    "not_applicable",
                )
            stop_price = new_stop
    volume = order.volume
    if changes.volume is not None:
        volume = changes.volume
        check_volume(spec, volume)
        if volume <= order.filled_volume:
            raise invalid_field(
                "volume",
                "The volume must stay above what has already filled",
                "below_filled",
                filledVolume=str(order.filled_volume),
            )
    sl, tp = order.stop_loss, order.take_profit
    if changes.stop_loss is not None:
        sl = price_or_none(spec, changes.stop_loss, "stopLoss")
    if changes.take_profit is not None:
        tp = price_or_none(spec, changes.take_profit, "takeProfit")
    reference = exit_price(order.side, prices) if price is None else price
    check_stops(spec, order.side, reference, sl, tp)
    if stop_price is not None and order.triggered_at is None:
        check_trigger_not_reached(order.side, stop_price, prices)
    expires = order.expires_at
    if changes.expires_at is not None:
        expires = check_new_expiry(order, changes.expires_at, now)
    return replace(
        order,
        price=price,
        stop_price=stop_price,
        volume=volume,
        stop_loss=sl,
        take_profit=tp,
        expires_at=expires,
        updated_at=now,
    )
