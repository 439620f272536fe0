"""Seed 000's wire format: client frames to commands, server messages to bytes.

Seed 000 shows only server messages (``{type, user_id?, timestamp, data}``); the client
side is defined here in the same spirit and documented in docs/dialects.md:
``{"type":"subscribe","types":[…]}`` narrows what a connection gets (the types its tier
allows are pushed without it), ``unsubscribe`` drops types, ``ping`` is answered with
``pong``. Errors keep the seed's shape: ``{"type":"error","timestamp","data":{code,
message, details?}}``, and the connection stays open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ujson

from fxgate.config.settings import DASHBOARD_TYPES
from fxgate.domain.errors import FxgateError, ValidationError
from fxgate.domain.timefmt import iso_ms
from fxgate.protocol.canonical import load_object


@dataclass(frozen=True, slots=True)
class Subscribe:
    types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    pass


Command = Subscribe | Unsubscribe | Ping

KNOWN = ("subscribe", "unsubscribe", "ping")


def parse(raw: str | bytes) -> Command:
    """One client frame to a command; raises ``ValidationError`` saying what is wrong."""
    msg = load_object(raw)
    kind = msg.get("type")
    if kind == "ping":
        return Ping()
    if kind in ("subscribe", "unsubscribe"):
        types = _types(msg.get("types"))
        return Subscribe(types) if kind == "subscribe" else Unsubscribe(types)
    raise ValidationError(
        "Unknown message type",
        field="type",
        reason="unknown",
        details={"type": kind, "accepted": list(KNOWN)},
    )


def _types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise ValidationError(
            "types must be a non-empty list of message types",
            field="types",
            reason="a non-empty list of strings",
            details={"accepted": list(DASHBOARD_TYPES)},
        )
    unknown = sorted({t for t in value if t not in DASHBOARD_TYPES})
    if unknown:
        raise ValidationError(
            "Unknown message type",
            field="types",
            reason="unknown",
            details={"types": unknown, "accepted": list(DASHBOARD_TYPES)},
        )
    return tuple(dict.fromkeys(value))


# -- server messages ------------------------------------------------------------------


#: Times as everywhere in fxgate: ISO 8601 UTC with milliseconds. Seed 000 shows
#: seconds (``2024-01-20T10:30:15Z``); ``Date.parse`` reads both, and the milliseconds
#: let a dashboard (and the benchmark) measure latency.
stamp = iso_ms


def encode(message: Mapping[str, Any]) -> bytes:
    return ujson.dumps(message, ensure_ascii=False).encode()


def message(kind: str, data: Any, ts: float, user_id: str | None = None) -> bytes:
    """A seed 000 message: ``type``, ``user_id`` for a user's own data, ``timestamp``,
    ``data``, in the seed's order."""
    msg: dict[str, Any] = {"type": kind}
    if user_id is not None:
        msg["user_id"] = user_id
    msg["timestamp"] = stamp(ts)
    msg["data"] = data
    return encode(msg)


def connection(
    session_id: str, user_id: str, tier: str, allowed: tuple[str, ...], types: tuple[str, ...]
) -> bytes:
    return encode(
        {
            "type": "connection",
            "status": "connected",
            "session_id": session_id,
            "user_id": user_id,
            "subscription_tier": tier,
            "allowed_types": list(allowed),
            "types": list(types),
            "timestamp": iso_ms(),
        }
    )


def subscribed(types: tuple[str, ...]) -> bytes:
    return encode({"type": "subscribed", "types": list(types), "timestamp": iso_ms()})


def pong() -> bytes:
    return encode({"type": "pong", "timestamp": iso_ms()})


def error(exc: FxgateError) -> bytes:
    data: dict[str, Any] = {"code": str(exc.code), "message": exc.message}
    if exc.details is not None:
        data["details"] = exc.details
    return encode({"type": "error", "timestamp": iso_ms(), "data": data})


def shutdown_notice(user_id: str, ts: float) -> bytes:
    """What a dashboard is told before the close 1001 of a restart: a ``notification``,
    the seed's own shape for something to show the user."""
    return message(
        "notification",
        {
            "id": f"notif_restart_{int(ts * 1000)}",
            "type": "system",
            "priority": "high",
            "title": "Server restarting",
            "message": "The gateway is restarting; the dashboard reconnects shortly",
            "action_required": False,
            "action_url": None,
            "expires_at": stamp(ts + 60),
        },
        ts,
        user_id,
    )
