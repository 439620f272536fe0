"""The shapes the store hands back, and the rules both backends apply to what comes in.

Records are frozen so that a service cannot mutate a cached user and believe it saved
it: every change goes through a store method. Timestamps are tz-aware UTC truncated to
milliseconds, because that is all MongoDB keeps; SQLite truncates the same way so that
both backends return identical values and one contract test suite holds for both.

Trading documents (orders, positions, deals, accounts, alerts, strategies, signals) stay
plain JSON-safe dicts owned by the engine; the store only lifts out the few fields it
indexes, with the checks in this module, so both backends refuse the same bad input.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fxgate.domain.timefmt import parse_iso

#: A JSON-safe document, as the engine and the services produce them.
Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class User:
    """A person or program that may log in.

    ``email`` keeps the spelling it was registered with; uniqueness and look-ups ignore
    case. ``password_hash`` is None for users created by ``fxgate token issue``, who
    authenticate with issued tokens or API keys only. ``role`` and ``tier`` are plain
    strings here: the services own their vocabularies (``fxgate.domain.roles``).
    """

    id: str
    email: str
    name: str
    role: str
    password_hash: str | None
    tier: str
    disabled: bool
    preferences: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key for programs that sign their requests (seed 004).

    ``key_id`` is the public ``api_key`` a client sends. HMAC-SHA256 needs the very same
    secret on both sides to verify a signature, so it cannot be hashed like a password;
    instead ``secret`` reaches the store sealed with the master key (``fxenc1:…``, see
    ``fxgate.services.auth.sealing``), and the store keeps it as given. A value without
    that prefix is a clear-text secret from an fxgate older than sealing.
    """

    key_id: str
    user_id: str
    secret: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key of the JWT signing ring, named by the ``kid`` header of the tokens.

    Exactly one key is ``active`` (new tokens are signed with it); inactive keys that
    are not ``retired_at`` still verify tokens issued before a rotation. The store keeps
    ``secret`` sealed with the master key (``fxenc1:…``); the key ring unseals it.
    """

    kid: str
    secret: str
    algorithm: str
    created_at: datetime
    active: bool
    retired_at: datetime | None = None

    @property
    def verifies(self) -> bool:
        """Whether tokens signed with this key are still accepted."""
        return self.retired_at is None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A refresh token's server-side state; rotation chains tokens into a family.

    A token is spent once (``used_at``); presenting it again is reuse, and the whole
    family is then revoked (DESIGN.md, "REST").
    """

    jti: str
    family_id: str
    user_id: str
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log. ``id`` is opaque and differs in shape per backend."""

    id: str
    ts: datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLC bar; prices and volume are Decimal strings, as everywhere in the store."""

    symbol: str
    interval: str
    open_time: datetime
    open: str
    high: str
    low: str
    close: str
    volume: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One message of a channel stream, kept so that a client can resume after a gap."""

    stream: str
    offset: int
    epoch: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OwnedDoc:
    """A document with its owner, for the few listings that span every user."""

    id: str
    user_id: str | None
    doc: Doc


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


def email_key(email: str) -> str:
    """The case-insensitive form that uniqueness and look-ups use."""
    return email.strip().lower()
