"""What seed 004's two sockets share on the wire: JSON objects in, errors, pongs and
the shutdown notice out. No I/O (see ``fxgate.protocol.canonical``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fxgate.domain.errors import FxgateError, ValidationError
from fxgate.domain.timefmt import iso_ms
from fxgate.protocol.canonical import encode


def request_id(msg: Mapping[str, Any]) -> str | None:
    """The client's correlation id (``id``, or ``requestId``): echoed in the answer."""
    value = msg.get("id", msg.get("requestId"))
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise ValidationError("id must be a string or a number", field="id", reason="type")


def unknown_type(kind: Any, accepted: tuple[str, ...]) -> ValidationError:
    return ValidationError(
        "Unknown message type",
        field="type",
        reason="unknown",
        details={"type": kind, "accepted": list(accepted)},
    )


def with_id(message: dict[str, Any], rid: str | None) -> dict[str, Any]:
    if rid is not None:
        message["id"] = rid
    message["timestamp"] = iso_ms()
    return message


def error(exc: FxgateError, rid: str | None = None) -> bytes:
    msg: dict[str, Any] = {"type": "error", "code": str(exc.code), "message": exc.message}
    if exc.details is not None:
        msg["details"] = exc.details
    return encode(with_id(msg, rid))


def pong(rid: str | None = None) -> bytes:
    return encode(with_id({"type": "pong"}, rid))


def shutdown_notice() -> bytes:
    """Sent before close 1001: the client reconnects (with backoff) and resubscribes."""
    return encode(
        with_id(
            {"type": "shutdown", "reason": "Server restarting", "reconnect": True},
            None,
        )
    )
