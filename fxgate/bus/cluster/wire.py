"""Trading commands and their answers as JSON, for the hop over Redis.

JSON and not pickle: whoever can write to Redis must not be able to run code on the
leader. Decimals travel as strings (a float would lose cents), enums as their values,
datetimes as ISO 8601; decoding is driven by the dataclass's type hints, worked out once
per class.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from fxgate.domain.errors import ErrorCode, FxgateError

T = TypeVar("T")
_DECODERS: dict[type, tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def encode(value: Any) -> Any:
    """``value`` as JSON-safe data (dataclasses become dicts of their fields)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    raise TypeError(f"cannot send {type(value).__name__} to the leader")


def decode(cls: type[T], data: dict[str, Any]) -> T:
    """The dataclass ``cls`` from :func:`encode`'s dict; unknown keys are ignored."""
    decoders = _DECODERS.get(cls)
    if decoders is None:
        hints = typing.get_type_hints(cls)
        decoders = tuple(
            (f.name, _converter(hints[f.name]))
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        )
        _DECODERS[cls] = decoders
    return cls(**{name: conv(data[name]) for name, conv in decoders if name in data})


def _converter(hint: Any) -> Callable[[Any], Any]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        conv = _converter(inner)
        return lambda v: None if v is None else conv(v)
    if hint is Decimal:
        return Decimal
    if hint is datetime:
        return datetime.fromisoformat
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    return lambda v: v


def error_out(exc: FxgateError) -> dict[str, Any]:
    return {
        "code": str(exc.code),
        "message": exc.message,
        "details": exc.details,
        "status": exc.status,
    }


def error_in(data: dict[str, Any]) -> FxgateError:
    """The leader's refusal, as the same code, message, details and status here."""
    return FxgateError(
        data["message"],
        code=ErrorCode(data["code"]),
        details=data.get("details"),
        status=int(data["status"]),
    )
