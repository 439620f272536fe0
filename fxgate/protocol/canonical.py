"""Seed 001's wire format (``/api/ws``): client frames to commands, replies to bytes.

No I/O here: the session feeds text in and gets commands or a ``ValidationError`` out,
so every malformed input is answered with an error and never reaches Tornado. Replies
and events are *payload* bytes (the JSON text); WebSocket framing is the transport's
(``fxgate.web.ws.framing``), so the same encoder serves any transport and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ujson

from fxgate.domain.errors import FxgateError, ValidationError
from fxgate.domain.timefmt import iso_ms
from fxgate.plugins.channel import Channel


@dataclass(frozen=True, slots=True)
class SubItem:
    name: str
    filters: Any = None
    since: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    items: tuple[SubItem, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Auth:
    token: str


Command = Subscribe | Unsubscribe | Ping | Auth

KNOWN_TYPES = ("subscribe", "unsubscribe", "ping", "auth")


def load_object(raw: str | bytes) -> dict[str, Any]:
    """One client frame as a JSON object, the rule of every JSON dialect: a binary
    frame, broken JSON or a non-object is a ``VALIDATION_ERROR`` naming ``frame``."""
    if isinstance(raw, bytes):
        raise ValidationError(
            "Binary frames are not supported; send JSON text", field="frame", reason="binary"
        )
    try:
        msg = ujson.loads(raw)
    except ValueError:
        raise ValidationError("Invalid JSON", field="frame", reason="json") from None
    if not isinstance(msg, dict):
        raise ValidationError("A message must be a JSON object", field="frame", reason="not_object")
    return msg


def parse(raw: str | bytes) -> Command:
    """One client frame to a command; raises ``ValidationError`` with a clear message."""
    msg = load_object(raw)
    kind = msg.get("type")
    if kind == "subscribe":
        return Subscribe(_sub_items(msg.get("channels")))
    if kind == "unsubscribe":
        return Unsubscribe(_unsub_names(msg.get("channels")))
    if kind == "ping":
        return Ping()
    if kind == "auth":
        token = msg.get("token")
        if not isinstance(token, str) or not token:
            raise ValidationError("auth needs a token", field="token", reason="missing")
        return Auth(token)
    raise ValidationError(
        "Unknown message type",
        field="type",
        reason="unknown",
        details={"type": kind, "accepted": list(KNOWN_TYPES)},
    )


def _sub_items(channels: Any) -> tuple[SubItem, ...]:
    if not isinstance(channels, list) or not channels:
        raise ValidationError("Invalid subscription", field="channels", reason="a non-empty list")
    items = []
    for entry in channels:
        if isinstance(entry, str):
            items.append(SubItem(entry))
        elif isinstance(entry, dict):
            name = entry.get("name")
            if not isinstance(name, str):
                raise ValidationError("Invalid subscription", field="name", reason="a string")
            unknown = set(entry) - {"name", "filters", "since"}
            if unknown:
                raise ValidationError(
                    "Invalid subscription",
                    field=sorted(unknown)[0],
                    reason="unknown fields",
                    details={"fields": sorted(unknown)},
                )
            items.append(SubItem(name, entry.get("filters"), _since(entry.get("since"))))
        else:
            raise ValidationError(
                "Invalid subscription",
                field="channels",
                reason="each channel is a name or {name, filters, since}",
            )
    return tuple(items)


def _since(value: Any) -> tuple[int, str] | None:
    if value is None:
        return None
    if (
        isinstance(value, dict)
        and isinstance(value.get("offset"), int)
        and not isinstance(value.get("offset"), bool)
        and value["offset"] >= 0
        and isinstance(value.get("epoch"), str)
    ):
        return (value["offset"], value["epoch"])
    raise ValidationError("Invalid subscription", field="since", reason="{offset: int, epoch: str}")


def _unsub_names(channels: Any) -> tuple[str, ...]:
    if not isinstance(channels, list) or not channels:
        raise ValidationError("Invalid unsubscription", field="channels", reason="a non-empty list")
    names = []
    for entry in channels:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            entry = entry["name"]
        if not isinstance(entry, str):
            raise ValidationError(
                "Invalid unsubscription", field="channels", reason="channel names"
            )
        names.append(entry)
    return tuple(names)


# -- server replies ----------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """A message's payload: compact UTF-8 JSON (no framing)."""
    return ujson.dumps(message, ensure_ascii=False).encode()


def connection(session_id: str, user_id: str) -> bytes:
    return encode(
        {
            "type": "connection",
            "status": "connected",
            "sessionId": session_id,
            "userId": user_id,
            "timestamp": iso_ms(),
        }
    )


def subscription(channels: list[dict[str, Any]]) -> bytes:
    return encode(
        {"type": "subscription", "status": "success", "channels": channels, "timestamp": iso_ms()}
    )


def unsubscription(names: list[str]) -> bytes:
    return encode(
        {"type": "unsubscription", "status": "success", "channels": names, "timestamp": iso_ms()}
    )


def pong() -> bytes:
    return encode({"type": "pong", "timestamp": iso_ms()})


def auth_ok(expires_at: float) -> bytes:
    return encode({"type": "auth", "status": "success", "expiresAt": iso_ms(expires_at)})


def error(exc: FxgateError) -> bytes:
    msg: dict[str, Any] = {"type": "error", "code": str(exc.code), "message": exc.message}
    if exc.details is not None:
        msg["details"] = exc.details
    msg["timestamp"] = iso_ms()
    return encode(msg)


class CanonicalDialect:
    """Seed 001: the envelope goes out as it is."""

    name = "canonical"

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        return encode(envelope)


CANONICAL = CanonicalDialect()
