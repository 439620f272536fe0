"""Trading signals as seed 002 shows them, checked field by field.

A signal comes from outside fxgate's own services (a signal engine, a strategy runner,
an AI validator) through the publish API or ``node.ingest``, so every field is checked
before anything is stored or announced, and each refusal names its field. What comes
out is seed 002's ``signals_update`` payload exactly, with timestamps in fxgate's one
wire format (ISO 8601 UTC with milliseconds), so every dialect can map it by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from fxgate.domain.errors import ValidationError
from fxgate.domain.timefmt import iso_ms, parse_iso

SIDES = ("buy", "sell")
STATUSES = ("pending", "approved", "rejected")
#: Seed 002's fields, in its order: the whole payload, nothing beside it but
#: :data:`OPTIONAL_FIELDS` when the producer sends them.
FIELDS = (
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
)
#: fxgate's own optional fields, kept in the payload only when the producer sends them:
#: ``generationMs``, how long the producer took to make the signal (milliseconds), for
#: seed 000's ``signal_generation_ms``.
OPTIONAL_FIELDS = ("generationMs",)
VALIDATOR_FIELDS = ("name", "type", "approved", "confidence", "reason", "timestamp")
MAX_VALIDATORS = 32
#: Bounds that tell a typing error from a signal: no real volume is a million lots.
MAX_VOLUME = 10**6
MAX_LEVEL = 10**9
#: An hour: a longer "generation" is a unit error (seconds, microseconds), not a signal's.
MAX_GENERATION_MS = 3_600_000

_IDENT = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_SYMBOL = re.compile(r"^[A-Za-z0-9._/\-]{1,32}$")


def _bad(field: str, reason: str, message: str = "Invalid signal") -> ValidationError:
    return ValidationError(message, field=field, reason=reason, details={"channel": "signals"})


def _text(data: Mapping[str, Any], key: str, where: str, *, max_len: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, "must be a non-empty string")
    if len(value) > max_len:
        raise _bad(where, f"at most {max_len} characters")
    return value


def _number(
    value: Any, where: str, *, low: float, high: float, low_open: bool = False
) -> int | float:
    """A JSON number within bounds, as given (an integer stays one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(where, "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if math.isnan(number) or number < low or number > high or (low_open and number == low):
        opening = "(" if low_open else "["
        raise _bad(where, f"must be in {opening}{low:g}, {high:g}]")
    return value


def _time(value: Any, where: str) -> str:
    if value is None:
        return iso_ms()
    if not isinstance(value, str) or len(value) > 64:
        raise _bad(where, "must be an ISO 8601 time")
    try:
        when = parse_iso(value)
    except ValueError:
        raise _bad(where, "must be an ISO 8601 time") from None
    if not 1970 <= when.year <= 2999:
        raise _bad(where, "must be between the years 1970 and 2999")
    return iso_ms(when.timestamp())


def _unknown(data: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in data:
        if key not in known:
            raise _bad(f"{prefix}{key}", "unknown field")


def parse_validator(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise _bad(where, "must be an object")
    _unknown(data, VALIDATOR_FIELDS, f"{where}.")
    approved = data.get("approved")
    if not isinstance(approved, bool):
        raise _bad(f"{where}.approved", "must be true or false")
    return {
        "name": _text(data, "name", f"{where}.name", max_len=64),
        "type": _text(data, "type", f"{where}.type", max_len=32),
        "approved": approved,
        "confidence": _number(data.get("confidence"), f"{where}.confidence", low=0, high=1),
        "reason": _text(data, "reason", f"{where}.reason", max_len=1000),
        "timestamp": _time(data.get("timestamp"), f"{where}.timestamp"),
    }


def parse_signal(data: Any, *, prefix: str = "data.") -> dict[str, Any]:
    """Seed 002's signal from ``data``, or ``ValidationError`` naming the first bad field
    (``data.side``, ``data.validators.1.confidence``).

    ``tp``/``sl`` may be null (no level); ``timestamp`` defaults to now, ``validators``
    to none; ``generationMs`` (0 to an hour) is optional and kept only when given;
    every other field is required. Unknown fields are refused, so a typo is an error
    rather than a silently dropped field.
    """
    if not isinstance(data, Mapping):
        raise _bad(prefix.rstrip(".") or "data", "must be an object")
    _unknown(data, FIELDS + OPTIONAL_FIELDS, prefix)
    uuid = data.get("uuid")
    if not isinstance(uuid, str) or not _IDENT.match(uuid):
        raise _bad(f"{prefix}uuid", "1 to 64 letters, digits or _.:-")
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise _bad(f"{prefix}symbol", "1 to 32 letters, digits or ._/-")
    side = data.get("side")
    if side not in SIDES:
        raise _bad(f"{prefix}side", "must be buy or sell")
    status = data.get("status")
    if status not in STATUSES:
        raise _bad(f"{prefix}status", "must be pending, approved or rejected")
    levels: dict[str, int | float | None] = {}
    for key in ("tp", "sl"):
        value = data.get(key)
        levels[key] = None if value is None else _number(value, prefix + key, low=0, high=MAX_LEVEL)
    generation = data.get("generationMs")
    if generation is not None:
        generation = _number(generation, f"{prefix}generationMs", low=0, high=MAX_GENERATION_MS)
    validators = data.get("validators", [])
    if not isinstance(validators, list):
        raise _bad(f"{prefix}validators", "must be a list")
    if len(validators) > MAX_VALIDATORS:
        raise _bad(f"{prefix}validators", f"at most {MAX_VALIDATORS} validators")
    signal: dict[str, Any] = {
        "uuid": uuid,
        "symbol": symbol.upper(),
        "side": side,
        "volume": _number(
            data.get("volume"), f"{prefix}volume", low=0, high=MAX_VOLUME, low_open=True
        ),
        "tp": levels["tp"],
        "sl": levels["sl"],
        "source": _text(data, "source", f"{prefix}source", max_len=64),
        "confidence": _number(data.get("confidence"), f"{prefix}confidence", low=0, high=1),
        "timestamp": _time(data.get("timestamp"), f"{prefix}timestamp"),
        "validators": [
            parse_validator(v, f"{prefix}validators.{i}") for i, v in enumerate(validators)
        ],
        "status": status,
    }
    if generation is not None:
        signal["generationMs"] = generation
    return signal
