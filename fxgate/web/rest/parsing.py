"""Request bodies and query strings into validated models, or a VALIDATION_ERROR.

The error ``details`` list every problem at once, one ``{field, message, type}`` per
field, so a form can mark all bad inputs in one round trip. They never echo the input:
a rejected value may be a password.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pydantic
from pydantic import BaseModel

from fxgate.domain.errors import ValidationError

#: Bodies larger than this are refused before parsing (no endpoint needs more).
MAX_BODY_BYTES = 1024 * 1024

_MESSAGES = {
    "extra_forbidden": "Unknown field",
    "missing": "Field required",
}


def field_error(field: str, message: str, kind: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": kind}


def invalid(message: str, errors: Sequence[Mapping[str, str]]) -> ValidationError:
    """Several problems of one body at once: ``details.field`` is the first, and
    ``details.errors`` lists them all."""
    first = errors[0] if errors else {"field": "body", "type": "invalid"}
    return ValidationError(message, field=first["field"], reason=first["type"], errors=errors)


def _loc(loc: Iterable[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def error_details(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    return [
        field_error(_loc(err["loc"]) or "body", _MESSAGES.get(err["type"], err["msg"]), err["type"])
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


class _Refused(Exception):
    """A body that is valid JSON to a lenient parser but not to us; names the field."""

    def __init__(self, field: str, message: str, kind: str) -> None:
        super().__init__(message)
        self.detail = field_error(field, message, kind)


class _NotJson:
    """``NaN``/``Infinity`` as parsed: refused by the enclosing object, which knows the key."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _constant(name: str) -> _NotJson:
    # NaN and Infinity are not JSON, and no price or volume may be either.
    return _NotJson(name)


def _bad_value(key: str, value: Any) -> _Refused | None:
    items = value if isinstance(value, list) else (value,)
    for item in items:
        if isinstance(item, list):
            refused = _bad_value(key, item)
            if refused is not None:
                return refused
        elif isinstance(item, _NotJson):
            return _Refused(key, f"{item.name} is not a JSON number", "json_invalid")
        if isinstance(item, str) and "\x00" in item:
            return _Refused(key, "NUL characters are not allowed", "string_nul")
    return None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing what a lenient parser lets through: a key given twice
    (whose last value would silently win: ``"symbol"`` twice chose the instrument) and
    NUL characters, which no field needs and C-string consumers truncate at."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(key, "Duplicate key", "duplicate_key")
            seen.add(key)
    for key, value in pairs:
        if "\x00" in key:
            raise _Refused(key, "NUL characters are not allowed", "string_nul")
        refused = _bad_value(key, value)
        if refused is not None:
            raise refused
    return obj


def decode_json(raw: bytes) -> Any:
    """Parse a body. Numbers stay floats: pydantic turns a float into a Decimal
    through its shortest repr, so ``0.1`` becomes ``Decimal("0.1")`` where a model
    asks for Decimal, while free-form objects stay plain JSON for the store.

    Malformed JSON is a 422 VALIDATION_ERROR like any other bad input: one status per
    error code (``domain.errors.HTTP_STATUS``), so a client needs one branch for it.
    """
    if len(raw) > MAX_BODY_BYTES:
        raise ValidationError(
            f"Request body too large (limit {MAX_BODY_BYTES} bytes)",
            field="body",
            reason="too_large",
            details={"limit": MAX_BODY_BYTES},
            status=413,
        )
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_constant, object_pairs_hook=_object)
        refused = _bad_value("body", data)  # a top-level NaN or string
    except RecursionError:
        raise invalid(
            "Malformed JSON body", [field_error("body", "Nested too deeply", "json_invalid")]
        ) from None
    except _Refused as exc:
        raise invalid("Malformed JSON body", [exc.detail]) from None
    except UnicodeDecodeError:
        raise invalid(
            "Malformed JSON body", [field_error("body", "Invalid JSON: not UTF-8", "json_invalid")]
        ) from None
    except json.JSONDecodeError as exc:
        raise invalid(
            "Malformed JSON body", [field_error("body", f"Invalid JSON: {exc.msg}", "json_invalid")]
        ) from None
    if refused is not None:
        raise invalid("Malformed JSON body", [refused.detail])
    return data


def choose_model(data: Mapping[str, Any], models: Sequence[type[BaseModel]]) -> type[BaseModel]:
    """The body shape a client meant, for endpoints that accept several.

    The first model owning a field that only it has and that the body sends wins, so a
    body gets the errors of the shape it was aiming at, not of every alternative.
    """
    if len(models) == 1:
        return models[0]
    names = [{f.alias or n for n, f in m.model_fields.items()} for m in models]
    for i, model in enumerate(models):
        others = set().union(*(n for j, n in enumerate(names) if j != i))
        if (names[i] - others) & data.keys():
            return model
    return models[0]


def parse_body(raw: bytes, models: Sequence[type[BaseModel]]) -> BaseModel:
    data = decode_json(raw)
    if not isinstance(data, dict):
        raise invalid(
            "Request body must be a JSON object",
            [field_error("body", "Expected a JSON object", "model_type")],
        )
    model = choose_model(data, models)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise invalid("Invalid request body", error_details(exc)) from None


def parse_query(args: Mapping[str, list[bytes]], model: type[BaseModel]) -> BaseModel:
    """Query parameters (the last value of a repeated one wins) into ``model``."""
    data: dict[str, str] = {}
    for name, values in args.items():
        try:
            data[name] = values[-1].decode()
        except UnicodeDecodeError:
            raise invalid(
                "Invalid query parameter", [field_error(name, "Not UTF-8", "string_unicode")]
            ) from None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise invalid("Invalid query parameters", error_details(exc)) from None
