"""The broker's records as the JSON-safe documents both store backends keep.

Persistence belongs to the store, not the domain: ``fxgate.domain.trading`` holds plain
frozen dataclasses, and this module turns them into dicts and back. Decimals become
strings (a float would lose cents), enums their values; keys are the field names.
:func:`decode` ignores unknown keys and lets missing ones take their defaults, so
records written by an older fxgate still load. The converters are worked out once per
class from its type hints, because decoding is on the path of every orders page.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from decimal import Decimal
from typing import Any, TypeVar

from fxgate.domain.trading import Account, Deal, Order, Position

#: What the trading area stores.
TradingRecord = Order | Position | Deal | Account
R = TypeVar("R", Order, Position, Deal, Account)


class _Kind(enum.Enum):
    PLAIN = 0
    DECIMAL = 1
    ENUM = 2


_Codec = tuple[tuple[str, _Kind, Any], ...]
_CODECS: dict[type, _Codec] = {}


def _codec(cls: type) -> _Codec:
    """Per-field converters, worked out once per class from its type hints."""
    cached = _CODECS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    out: list[tuple[str, _Kind, Any]] = []
    for f in fields(cls):
        hint = hints[f.name]
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if hint is Decimal:
            out.append((f.name, _Kind.DECIMAL, None))
        elif isinstance(hint, type) and issubclass(hint, enum.Enum):
            out.append((f.name, _Kind.ENUM, hint))
        else:
            out.append((f.name, _Kind.PLAIN, None))
    codec = tuple(out)
    _CODECS[cls] = codec
    return codec


def encode(record: TradingRecord) -> dict[str, Any]:
    """The JSON-safe dict of ``record``, one key per field."""
    out: dict[str, Any] = {}
    for name, kind, _ in _codec(type(record)):
        value = getattr(record, name)
        if value is None or kind is _Kind.PLAIN:
            out[name] = value
        elif kind is _Kind.DECIMAL:
            out[name] = str(value)
        else:
            out[name] = value.value
    return out


def decode(cls: type[R], doc: Mapping[str, Any]) -> R:
    """The record of type ``cls`` that ``doc`` (from :func:`encode`) describes."""
    kwargs: dict[str, Any] = {}
    for name, kind, enum_type in _codec(cls):
        if name not in doc:
            continue
        value = doc[name]
        if value is None or kind is _Kind.PLAIN:
            kwargs[name] = value
        elif kind is _Kind.DECIMAL:
            kwargs[name] = Decimal(str(value))
        else:
            kwargs[name] = enum_type(value)
    return cls(**kwargs)
