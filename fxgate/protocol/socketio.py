"""Seed 002's dialect (``/socket.io/``): Socket.IO packets to commands, events to packets.

No I/O here. Engine.IO (handshake, polling, upgrade, ping/pong) is python-engineio's,
in the web layer; this module speaks the Socket.IO layer on top of it, default
namespace only, with python-socketio's packet codec for what clients send.

Every server payload here is a complete Engine.IO *message* packet: ``4`` (Engine.IO
MESSAGE) + ``2`` (Socket.IO EVENT) + the JSON array ``[event, data]``, e.g.
``42["quotes",{"symbol":"EURUSD",...}]``. The same bytes go into a WebSocket text frame
(framed once per event and shared, ``fxgate.web.ws.framing``) or into a polling
response, so the hub encodes an event once for every Socket.IO client.

Seed 002's channel names map onto the hub's: ``quotes`` is ``market-data``; ``account``,
``logs`` and ``signals`` are themselves, one event per hub event; ``positions`` and
``orders`` are *lists*: their hub events are never sent one by one, the client gets the
user's full current list instead (:func:`positions_list`, :func:`orders_list`, built by
``fxgate.protocol.socketio_lists``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ujson
from socketio import packet as sio_packet

from fxgate.domain.errors import FxgateError, ValidationError
from fxgate.domain.timefmt import iso_ms
from fxgate.domain.trading import Order, Position
from fxgate.plugins.channel import Channel

#: Seed 002's channel names -> the hub's.
SEED_CHANNELS: dict[str, str] = {
    "quotes": "market-data",
    "positions": "positions",
    "orders": "orders",
    "account": "account",
    "logs": "logs",
    "signals": "signals",
}
HUB_TO_SEED: dict[str, str] = {v: k for k, v in SEED_CHANNELS.items()}

#: Seed channels whose events are the user's full current list, and the list's event.
LIST_EVENTS: dict[str, str] = {"positions": "positions_update", "orders": "orders_update"}

#: Hub channel -> (event name, the seed's fields, in the seed's order).
EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "market-data": ("quotes", ("symbol", "bid", "ask", "spread", "timestamp")),
    "account": (
        "account_update",
        ("balance", "equity", "margin", "free_margin", "margin_level", "profit", "currency"),
    ),
    "logs": ("logs_update", ("timestamp", "level", "message", "module", "extra")),
    "signals": (
        "signals_update",
        (
            "uuid",
            "symbol",
            "side",
            "volume",
            "tp",
            "sl",
            "source",
            "confidence",
            "timestamp",
            "validators",
            "status",
        ),
    ),
}

CLIENT_EVENTS = ("subscribe", "unsubscribe", "heartbeat")
NAMESPACE = "/"


def _dumps(value: Any) -> bytes:
    return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False).encode()


def event(name: str, data: Any) -> bytes:
    """``42[name,data]``: one Socket.IO event in an Engine.IO message packet."""
    return b"42" + _dumps([name, data])


class SocketIODialect:
    """Hub envelope -> seed 002 event packet; None for lists and unmapped channels."""

    name = "socketio"

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        spec = EVENTS.get(channel.name)
        if spec is None:
            return None
        name, fields = spec
        data = envelope["data"]
        return event(name, {k: data.get(k) for k in fields})


SOCKETIO = SocketIODialect()


# -- lists ---------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def position_item(p: Position) -> dict[str, Any]:
    """One open position with seed 002's fields (MT5's names; commission signed as MT5
    signs it, negative for a cost)."""
    return {
        "ticket": p.ticket,
        "symbol": p.symbol,
        "type": p.side.value,
        "volume": float(p.volume),
        "price_open": float(p.open_price),
        "price_current": float(p.current_price),
        "sl": _num(p.stop_loss),
        "tp": _num(p.take_profit),
        "profit": float(p.profit),
        "swap": float(p.swap),
        "commission": float(p.commission),
        "time": iso_ms(p.opened_at),
        "comment": p.comment or "",
    }


def order_item(o: Order) -> dict[str, Any]:
    """One pending order with seed 002's fields: ``type`` is MT5's (``buy_limit``),
    ``price_open`` the price that triggers it (a stop's stop price, as MT5 has it)."""
    return {
        "ticket": o.ticket,
        "symbol": o.symbol,
        "type": o.mt5_type.lower(),
        "volume": float(o.volume),
        "price_open": _num(o.stop_price if o.stop_price is not None else o.price),
        "sl": _num(o.stop_loss),
        "tp": _num(o.take_profit),
        "time_setup": iso_ms(o.created_at),
        "state": o.status.value,
        "comment": o.comment or "",
    }


def positions_list(positions: Iterable[Position]) -> bytes:
    return event("positions_update", [position_item(p) for p in positions])


def orders_list(orders: Iterable[Order]) -> bytes:
    return event("orders_update", [order_item(o) for o in orders])


# -- client packets ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    """Socket.IO CONNECT: ``auth`` is the client's ``auth`` option (``{token}``)."""

    namespace: str
    auth: Any


@dataclass(frozen=True, slots=True)
class Leave:
    """Socket.IO DISCONNECT from the client (``socket.disconnect()``)."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    #: Seed channel names, as sent (mapped and checked by the session).
    channels: tuple[str, ...]
    #: The packet's id when the client passed an acknowledgement callback.
    ack: int | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channels: tuple[str, ...]
    ack: int | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    #: The client's timestamp, echoed in ``heartbeat_ack`` (None when it sent none).
    timestamp: Any
    ack: int | None = None


Command = Connect | Leave | Subscribe | Unsubscribe | Heartbeat


def parse(raw: str | bytes) -> Command:
    """One Engine.IO message's data (a Socket.IO packet) to a command.

    Raises ``ValidationError`` with a clear message for anything else: binary, an
    undecodable packet, another namespace, an unknown event, a malformed payload.
    """
    if isinstance(raw, bytes):
        raise ValidationError(
            "Binary packets are not supported; send JSON", field="frame", reason="binary"
        )
    try:
        pkt = sio_packet.Packet(encoded_packet=raw)
    except Exception:
        raise ValidationError("Invalid Socket.IO packet", field="frame", reason="packet") from None
    namespace = pkt.namespace or NAMESPACE
    kind = pkt.packet_type
    if kind == sio_packet.CONNECT:
        return Connect(namespace, pkt.data)
    if namespace != NAMESPACE:
        raise ValidationError(
            "Unknown namespace", field="namespace", details={"namespace": namespace}
        )
    if kind == sio_packet.DISCONNECT:
        return Leave()
    if kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
        raise ValidationError(
            "Binary events are not supported; send JSON", field="frame", reason="binary"
        )
    if kind != sio_packet.EVENT:
        raise ValidationError(
            "Unexpected packet", field="frame", reason="packet", details={"type": kind}
        )
    data = pkt.data
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise ValidationError("An event needs a name", field="event", reason="missing")
    name, args = data[0], data[1:]
    payload = args[0] if args else None
    ack = pkt.id if isinstance(pkt.id, int) else None
    if name == "subscribe":
        return Subscribe(_channels(payload, "subscription"), ack)
    if name == "unsubscribe":
        return Unsubscribe(_channels(payload, "unsubscription"), ack)
    if name == "heartbeat":
        timestamp = payload.get("timestamp") if isinstance(payload, dict) else None
        return Heartbeat(timestamp, ack)
    raise ValidationError(
        "Unknown event",
        field="event",
        reason="unknown",
        details={"event": name, "accepted": list(CLIENT_EVENTS)},
    )


def _channels(payload: Any, what: str) -> tuple[str, ...]:
    channels = payload.get("channels") if isinstance(payload, dict) else None
    if (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, str) for c in channels)
    ):
        raise ValidationError(
            f"Invalid {what}",
            field="channels",
            reason="{channels: [names]}, a non-empty list of channel names",
            details={"accepted": list(SEED_CHANNELS)},
        )
    return tuple(channels)


def token_of(auth: Any) -> str | None:
    """The token of a CONNECT packet's ``auth`` (``{token}``), if any."""
    if isinstance(auth, dict):
        token = auth.get("token")
        if isinstance(token, str) and token:
            return token
    return None


# -- server packets ------------------------------------------------------------------


def connect_ok(sid: str) -> bytes:
    """``40{"sid"}``: the namespace is joined (socket.io-client's ``connect``)."""
    return b"40" + _dumps({"sid": sid})


def connect_error(exc: FxgateError) -> bytes:
    """``44{"message","data"}``: socket.io-client's ``connect_error`` with
    ``err.message`` and ``err.data`` ({code, details})."""
    data: dict[str, Any] = {"code": str(exc.code)}
    if exc.details is not None:
        data["details"] = exc.details
    return b"44" + _dumps({"message": exc.message, "data": data})


def ack(ack_id: int, data: Any) -> bytes:
    """``43<id>[data]``: calls the client's acknowledgement callback with ``data``."""
    return b"43" + str(ack_id).encode() + _dumps([data])


#: ``41``: the server leaves the namespace (the client's ``disconnect`` event with
#: ``io server disconnect``).
DISCONNECT = b"41"


def disconnected(reason: str, reconnect: bool = True) -> bytes:
    return event("disconnected", {"reason": reason, "reconnect": reconnect})


def heartbeat_body(timestamp: Any) -> dict[str, Any]:
    return {"timestamp": timestamp if timestamp is not None else iso_ms(), "server_time": iso_ms()}


def heartbeat_ack(timestamp: Any) -> bytes:
    return event("heartbeat_ack", heartbeat_body(timestamp))


def _details_text(details: Any) -> str | None:
    """Seed 002 shows ``details`` as text: the structured details, as ``key: value``."""
    if details is None:
        return None
    if isinstance(details, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in details.items())
    return str(details)


class SocketIOReplies:
    """The session's control replies as seed 002 events (:class:`Session.replies`)."""

    def connection(self, session_id: str, user_id: str) -> bytes:
        return event("connected", {"message": "Connected to fxgate", "server_time": iso_ms()})

    def subscription(self, channels: list[dict[str, Any]]) -> bytes:
        names = [HUB_TO_SEED.get(c["name"], c["name"]) for c in channels]
        body: dict[str, Any] = {"channels": names}
        tried = [c for c in channels if "recovered" in c]
        if tried:
            body["recovered"] = [
                HUB_TO_SEED.get(c["name"], c["name"]) for c in tried if c["recovered"]
            ]
        return event("subscribed", body)

    def unsubscription(self, names: list[str]) -> bytes:
        return event("unsubscribed", {"channels": [HUB_TO_SEED.get(n, n) for n in names]})

    def pong(self) -> bytes:
        return heartbeat_ack(None)

    def auth_ok(self, expires_at: float) -> bytes:
        return event("auth", {"status": "success", "expiresAt": iso_ms(expires_at)})

    def error(self, exc: FxgateError) -> bytes:
        details = exc.details
        if isinstance(details, Mapping) and "channel" in details:
            # Name the channel as the client wrote it.
            details = {
                **details,
                "channel": HUB_TO_SEED.get(details["channel"], details["channel"]),
            }
        body: dict[str, Any] = {
            "error": exc.message,
            "details": _details_text(details),
            "code": str(exc.code),
        }
        if isinstance(details, Mapping):
            body["context"] = dict(details)
        return event("error", body)


REPLIES = SocketIOReplies()
