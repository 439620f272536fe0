"""Seed 004's ``/ws/trading`` wire format: client frames to commands, events to bytes.

Client frames (``id`` optional, echoed in the one answer each request gets):

- ``{"type":"auth","api_key","signature","timestamp"}``: the REST API-key login's
  signature (docs/rest.md), so one signer serves both;
- ``{"type":"place_order","id","order":{"symbol","side","type","quantity","price"?,…}}``
  (``order`` may be spelled ``data``): the seed's ``sendOrder`` object as it is;
- ``{"type":"cancel_order","id","orderId"}``; ``{"type":"ping"}``.

Server messages: ``auth``, ``order_placed``, ``order_cancelled``, ``error`` (answers), and
the user's ``order_update``, ``position_update`` and ``trade_execution``. Symbols are
answered in the form the client writes them (:class:`TradingDialect` ``slashed``).
Numbers are parsed to ``Decimal`` from their JSON text, never through a float's error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fxgate.domain.errors import ValidationError
from fxgate.domain.timefmt import iso_ms
from fxgate.domain.trading import Order, order_id_for, position_id_for
from fxgate.plugins.channel import Channel
from fxgate.protocol.canonical import encode
from fxgate.protocol.seed004.common import unknown_type, with_id
from fxgate.services.presenters import order_payload

KNOWN_TYPES = ("auth", "place_order", "cancel_order", "ping")
SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
_ORDER_FIELDS = frozenset(
    {
        "symbol",
        "side",
        "type",
        "quantity",
        "price",
        "stopPrice",
        "stopLoss",
        "takeProfit",
        "timeInForce",
        "clientOrderId",
        "comment",
        "strategyId",
    }
)


@dataclass(frozen=True, slots=True)
class Auth:
    api_key: str
    signature: str
    timestamp: int
    rid: str | None = None


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    symbol: str  # as written
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_in_force: str = "GTC"
    client_order_id: str | None = None
    comment: str | None = None
    strategy_id: str | None = None
    rid: str | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: str
    rid: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    rid: str | None = None


Command = Auth | PlaceOrder | CancelOrder | Ping


def parse(msg: Mapping[str, Any], rid: str | None = None) -> Command:
    """A loaded client frame (``fxgate.protocol.canonical.load_object``) to a command."""
    kind = msg.get("type")
    if kind == "ping":
        return Ping(rid)
    if kind == "auth":
        return _auth(msg, rid)
    if kind == "place_order":
        order = msg.get("order", msg.get("data"))
        if not isinstance(order, dict):
            raise ValidationError(
                "place_order needs an order object", field="order", reason="missing"
            )
        return _order(order, rid)
    if kind == "cancel_order":
        order_id = msg.get("orderId", msg.get("order_id"))
        if not isinstance(order_id, str) or not order_id or len(order_id) > 64:
            raise ValidationError(
                "cancel_order needs an orderId", field="orderId", reason="missing"
            )
        return CancelOrder(order_id, rid)
    raise unknown_type(kind, KNOWN_TYPES)


def _auth(msg: Mapping[str, Any], rid: str | None) -> Auth:
    key, signature, ts = msg.get("api_key"), msg.get("signature"), msg.get("timestamp")
    if not isinstance(key, str) or not key or len(key) > 100:
        raise ValidationError("auth needs an api_key", field="api_key", reason="missing")
    if not isinstance(signature, str) or not signature or len(signature) > 256:
        raise ValidationError("auth needs a signature", field="signature", reason="missing")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise ValidationError(
            "auth needs a timestamp in epoch milliseconds", field="timestamp", reason="type"
        )
    return Auth(key, signature, ts, rid)


def _decimal(order: Mapping[str, Any], name: str, *, required: bool = False) -> Decimal | None:
    value = order.get(name)
    if value is None:
        if required:
            raise ValidationError(f"The order needs {name}", field=name, reason="missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(f"{name} must be a number", field=name, reason="type")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise ValidationError(f"{name} must be a number", field=name, reason="type") from None
    if not number.is_finite() or number <= 0:
        raise ValidationError(f"{name} must be positive", field=name, reason="range")
    return number


def _text(order: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = order.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValidationError(
            f"{name} must be a string of 1 to {limit} characters", field=name, reason="type"
        )
    return value


def _choice(order: Mapping[str, Any], name: str, accepted: tuple[str, ...], default: str) -> str:
    value = order.get(name, default)
    if not isinstance(value, str) or value.lower() not in {a.lower() for a in accepted}:
        raise ValidationError(
            f"Invalid {name}",
            field=name,
            reason="choice",
            details={"accepted": list(accepted)},
        )
    return value.lower() if name != "timeInForce" else value.upper()


def _order(order: Mapping[str, Any], rid: str | None) -> PlaceOrder:
    unknown = sorted(set(order) - _ORDER_FIELDS)
    if unknown:
        raise ValidationError(
            "Unknown order fields",
            field=unknown[0],
            reason="unknown fields",
            details={"fields": unknown},
        )
    symbol = _text(order, "symbol", 32)
    if symbol is None:
        raise ValidationError("The order needs a symbol", field="symbol", reason="missing")
    quantity = _decimal(order, "quantity", required=True)
    assert quantity is not None
    kind = _choice(order, "type", ORDER_TYPES, "")
    price = _decimal(order, "price", required=kind in ("limit", "stop_limit"))
    stop_price = _decimal(order, "stopPrice", required=kind == "stop_limit")
    if kind == "stop" and price is None and stop_price is None:
        raise ValidationError("A stop order needs stopPrice", field="stopPrice", reason="missing")
    if kind == "market" and (price is not None or stop_price is not None):
        name = "price" if price is not None else "stopPrice"
        raise ValidationError("Not allowed on a market order", field=name, reason="extra_forbidden")
    return PlaceOrder(
        symbol=symbol,
        side=_choice(order, "side", SIDES, ""),
        type=kind,
        quantity=quantity,
        price=price if kind != "stop" or price is not None else stop_price,
        stop_price=stop_price,
        stop_loss=_decimal(order, "stopLoss"),
        take_profit=_decimal(order, "takeProfit"),
        time_in_force=_choice(order, "timeInForce", TIME_IN_FORCE, "GTC"),
        client_order_id=_text(order, "clientOrderId", 64),
        comment=_text(order, "comment", 200),
        strategy_id=_text(order, "strategyId", 64),
        rid=rid,
    )


# -- replies -------------------------------------------------------------------------


def auth_ok(user_id: str, session_id: str, rid: str | None) -> bytes:
    return encode(
        with_id(
            {"type": "auth", "status": "success", "userId": user_id, "sessionId": session_id},
            rid,
        )
    )


class TradingDialect:
    """The user's orders, positions and deals as seed 004's update messages;
    ``slashed`` writes symbols ``BASE/QUOTE`` (``names``: broker symbol -> slashed)."""

    def __init__(self, *, slashed: bool, names: Mapping[str, str]) -> None:
        self.slashed = slashed
        self.name = "seed004-trading" + ("-slashed" if slashed else "")
        self._names = dict(names) if slashed else {}

    def symbol(self, broker_symbol: str) -> str:
        return self._names.get(broker_symbol, broker_symbol)

    def order(self, data: Mapping[str, Any], updated_at: str) -> dict[str, Any]:
        side, _, kind = str(data["orderType"]).lower().partition("_")
        return {
            "id": data["orderId"],
            "ticket": data["ticket"],
            "symbol": self.symbol(data["symbol"]),
            "side": side,
            "type": kind or "market",
            "quantity": data["volume"],
            "price": data["price"],
            "stopPrice": data["stopPrice"],
            "stopLoss": data["stopLoss"],
            "takeProfit": data["takeProfit"],
            "timeInForce": data["timeInForce"],
            "status": str(data["status"]).lower(),
            "filledQuantity": data["filledVolume"],
            "remainingQuantity": data["remainingVolume"],
            "averagePrice": data["fillPrice"],
            "clientOrderId": data["clientOrderId"],
            "rejectReason": data["rejectReason"],
            "createdAt": data["createdAt"],
            "updatedAt": updated_at,
        }

    def position(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": position_id_for(int(data["ticket"])),
            "ticket": data["ticket"],
            "symbol": self.symbol(data["symbol"]),
            "side": "long" if data["type"] == "BUY" else "short",
            "quantity": data["volume"],
            "averagePrice": data["openPrice"],
            "currentPrice": data["currentPrice"],
            "unrealizedPnL": data["unrealizedPnL"],
            "realizedPnL": data["realizedPnL"],
            "stopLoss": data["stopLoss"],
            "takeProfit": data["takeProfit"],
            "status": str(data["status"]).lower(),
            "openedAt": data["openedAt"],
            "updatedAt": data["lastUpdate"],
        }

    def trade(self, data: Mapping[str, Any]) -> dict[str, Any]:
        order_ticket = data.get("orderTicket")
        return {
            "id": data["executionId"],
            "orderId": order_id_for(int(order_ticket)) if order_ticket is not None else None,
            "positionId": position_id_for(int(data["ticket"])),
            "symbol": self.symbol(data["symbol"]),
            "side": str(data["action"]).lower(),
            "entry": str(data["entry"]).lower(),
            "quantity": data["volume"],
            "price": data["openPrice"],
            "profit": data["profit"],
            "commission": data["commission"],
            "timestamp": data["executedAt"],
        }

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        data = envelope["data"]
        name = channel.name
        if name == "orders":
            kind, body = "order_update", self.order(data, envelope["timestamp"])
        elif name == "positions":
            kind, body = "position_update", self.position(data)
        elif name == "trades":
            kind, body = "trade_execution", self.trade(data)
        else:
            return None
        return encode({"type": kind, "data": body, "timestamp": envelope["timestamp"]})

    def answer(self, kind: str, order: Order, rid: str | None, **extra: Any) -> bytes:
        """The answer to a request about ``order``: the same order object as updates."""
        body = self.order(order_payload(order), iso_ms(order.updated_at))
        return encode(with_id({"type": kind, "data": body, **extra}, rid))
