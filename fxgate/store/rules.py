"""The rules both store backends apply to what comes in, so both refuse the same input.

Adapter-side only: services see the port (``fxgate.services.ports.store``), never this.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fxgate.domain.timefmt import parse_iso
from fxgate.services.ports.store.records import User


def utc(value: datetime) -> datetime:
    """Normalise to tz-aware UTC with millisecond precision; naive values are UTC.

    Both backends call this on the way in, so that what a caller gets back equals
    what it would get from the other backend.
    """
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def now() -> datetime:
    return utc(datetime.now(UTC))


def new_user(
    *,
    email: str,
    name: str,
    role: str,
    password_hash: str | None,
    tier: str,
    preferences: Mapping[str, Any] | None,
    user_id: str | None,
) -> User:
    """A user as ``create_user`` stores it: a random id unless given, stamped now."""
    stamp = now()
    return User(
        id=user_id or uuid.uuid4().hex,
        email=email.strip(),
        name=name,
        role=role,
        password_hash=password_hash,
        tier=tier,
        disabled=False,
        preferences=dict(preferences or {}),
        created_at=stamp,
        updated_at=stamp,
    )


def doc_time(value: object) -> datetime | None:
    """The instant a trading document's time field names, for filtering and sorting.

    The engine writes ISO 8601 strings; MetaTrader 5 records carry epoch seconds. Both
    are accepted so that an MT5 deal stored verbatim still sorts by time.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str):
        try:
            return utc(parse_iso(value))
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from exc
    if isinstance(value, int | float) and not isinstance(value, bool):
        return utc(datetime.fromtimestamp(value, UTC))
    raise ValueError(f"not a timestamp: {value!r}")


def require_str(doc: Mapping[str, Any], key: str, kind: str) -> str:
    """A mandatory string key of a trading document; refused loudly rather than stored."""
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} record needs a non-empty string {key!r}")
    return value


def optional_str(doc: Mapping[str, Any], key: str, kind: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{kind} record's {key!r} must be a string or null")
    return value


def require_ticket(doc: Mapping[str, Any], kind: str) -> int:
    """Tickets are integers (MT5's, or ``next_sequence``'s): one type, one key space.

    Accepting ``"5"`` too would make ``5`` and ``"5"`` two rows in MongoDB and one in
    SQLite; the contract refuses both ambiguities instead.
    """
    value = doc.get("ticket")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{kind} record needs an integer 'ticket'")
    return value


def optional_ticket(doc: Mapping[str, Any], kind: str) -> int | None:
    if doc.get("ticket") is None:
        return None
    return require_ticket(doc, kind)


def check_paging(offset: int, limit: int) -> None:
    """Negative paging is a caller bug; the REST layer validates user input before."""
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")


def signal_columns(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a signal both backends index (and so require), by column name."""
    stamp = doc_time(require_str(doc, "timestamp", "signal"))
    assert stamp is not None
    return {
        "uuid": require_str(doc, "uuid", "signal"),
        "symbol": require_str(doc, "symbol", "signal"),
        "side": require_str(doc, "side", "signal"),
        "status": require_str(doc, "status", "signal"),
        "source": require_str(doc, "source", "signal"),
        "ts": stamp,
    }
