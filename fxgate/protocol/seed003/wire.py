"""Seed 003's ``/ws`` wire format: client frames to commands, and the control replies.

Seed 003 shows the auth message, the subscribe/unsubscribe frames and the event format
``{type, data, timestamp, channel?}``; it shows no acknowledgement, error or pong, so
those are fxgate's, in that same format (docs/dialects.md, "/ws (seed 003)"): every
server message is ``{"type", "data", "timestamp"}``, plus ``"channel"`` where the
message belongs to a subscribed channel. Errors carry seed 003's REST error object
(``code``, ``message``, ``details``) as their ``data``.

No I/O here, like :mod:`fxgate.protocol.canonical`: text in, commands or a
``ValidationError`` out; replies are payload bytes (the transport frames them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fxgate.domain.errors import FxgateError, ValidationError
from fxgate.domain.timefmt import iso_ms
from fxgate.protocol.canonical import Auth, Ping, encode, load_object

#: Seed 003's channel names -> the hub's channels they are served from.
CHANNELS: dict[str, str] = {
    "price_updates": "market-data",
    "market_news": "news",
    "ai_signals": "signals",
}
#: The hub's channel -> seed 003's name (for acknowledgements and errors).
SEED_NAME: dict[str, str] = {hub: seed for seed, hub in CHANNELS.items()}

KNOWN_TYPES = ("auth", "subscribe", "unsubscribe", "ping")


@dataclass(frozen=True, slots=True)
class ChannelRequest:
    """``subscribe``/``unsubscribe`` one channel; ``symbols`` empty means every symbol."""

    subscribe: bool
    channel: str
    symbols: tuple[str, ...] = ()

    @property
    def hub_channel(self) -> str:
        return CHANNELS[self.channel]


Command = Auth | Ping | ChannelRequest


def parse(raw: str | bytes) -> Command:
    """One client frame to a command; raises ``ValidationError`` naming the field.

    An auth message without a usable token becomes ``Auth("")``: the session refuses it
    as missing credentials (an error, then 4001 on a connection not yet authenticated).
    """
    msg = load_object(raw)
    kind = msg.get("type")
    if kind == "auth":
        token = msg.get("token")
        return Auth(token if isinstance(token, str) else "")
    if kind == "ping":
        return Ping()
    if kind in ("subscribe", "unsubscribe"):
        return ChannelRequest(kind == "subscribe", _channel(msg.get("channel")), _symbols(msg))
    raise ValidationError(
        "Unknown message type",
        field="type",
        reason="unknown",
        details={"type": kind, "accepted": list(KNOWN_TYPES)},
    )


def _channel(value: Any) -> str:
    if isinstance(value, str) and value in CHANNELS:
        return value
    raise ValidationError(
        "Invalid channel",
        field="channel",
        reason="missing" if value is None else "unknown",
        details={"channel": value, "accepted": list(CHANNELS)},
    )


def _symbols(msg: Mapping[str, Any]) -> tuple[str, ...]:
    if "symbols" not in msg or msg["symbols"] is None:
        return ()
    value = msg["symbols"]
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise ValidationError(
            "symbols must be a list of symbol names", field="symbols", reason="not_a_list"
        )
    if not value:
        raise ValidationError(
            "symbols is empty: name at least one, or leave it out for every symbol",
            field="symbols",
            reason="empty",
        )
    return tuple(dict.fromkeys(s.strip().upper() for s in value))


# -- server replies ----------------------------------------------------------------


def message(kind: str, data: Mapping[str, Any], channel: str | None = None) -> bytes:
    """A server message in seed 003's event format."""
    msg: dict[str, Any] = {"type": kind, "data": data, "timestamp": iso_ms()}
    if channel is not None:
        msg["channel"] = channel
    return encode(msg)


def auth_success(session_id: str, user_id: str, expires_at: float) -> bytes:
    return message(
        "auth_success",
        {"userId": user_id, "sessionId": session_id, "expiresAt": iso_ms(expires_at)},
    )


def channel_state(kind: str, channel: str, symbols: list[str], every: bool) -> bytes:
    """``subscribed``/``unsubscribed``: what the connection now holds on ``channel``
    (``all``: every symbol; else ``symbols``), not only what the request changed."""
    return message(kind, {"channel": channel, "symbols": symbols, "all": every}, channel)


def pong() -> bytes:
    return message("pong", {})


def restarting() -> bytes:
    return message(
        "system",
        {"status": "RESTARTING", "message": "Server restarting; reconnect shortly"},
    )


#: The hub's words for a field -> seed 003's (the client sent ``channel`` and
#: ``symbols``; the hub checked them as ``channels`` and ``filters.symbol``).
_FIELDS = {"channels": "channel", "filters.symbol": "symbols", "filters": "symbols"}


def error(exc: FxgateError) -> bytes:
    data: dict[str, Any] = {"code": str(exc.code), "message": exc.message}
    details = exc.details
    if isinstance(details, Mapping):
        details = dict(details)
        if details.get("field") in _FIELDS:
            details["field"] = _FIELDS[details["field"]]
        if details.get("channel") in SEED_NAME:
            details["channel"] = SEED_NAME[details["channel"]]
    if details is not None:
        data["details"] = details
    return message("error", data)


class Seed003Replies:
    """The session's control replies (:class:`fxgate.protocol.session.Replies`) in seed
    003's words.

    ``connection`` and ``subscription`` are there for the protocol's sake: the
    :class:`~fxgate.protocol.seed003.session.Seed003Session` says more than their
    arguments carry (the token's expiry, the channel's whole state) and sends its own.
    """

    pong = staticmethod(pong)
    error = staticmethod(error)

    @staticmethod
    def connection(session_id: str, user_id: str) -> bytes:
        return message("auth_success", {"userId": user_id, "sessionId": session_id})

    @staticmethod
    def auth_ok(expires_at: float) -> bytes:
        return message("auth_success", {"expiresAt": iso_ms(expires_at)})

    @staticmethod
    def subscription(channels: list[dict[str, Any]]) -> bytes:
        return message("subscribed", {"channels": [SEED_NAME.get(c["name"]) for c in channels]})

    @staticmethod
    def unsubscription(names: list[str]) -> bytes:
        return message("unsubscribed", {"channels": [SEED_NAME.get(n, n) for n in names]})


REPLIES = Seed003Replies()
