"""The shapes the store hands back: part of the port, so services never import an adapter.

Records are frozen so that a service cannot mutate a cached user and believe it saved
it: every change goes through a store method. Timestamps are tz-aware UTC truncated to
milliseconds, because that is all MongoDB keeps; SQLite truncates the same way so that
both backends return identical values and one contract test suite holds for both.

Alerts and strategies stay plain JSON-safe dicts (:data:`Doc`) owned by the services;
trading records are the domain's own types (``fxgate.domain.trading``), which the store
encodes itself (``fxgate.store.codecs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: A JSON-safe document (an alert, a strategy), as the services produce them.
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
class OwnedDoc:
    """A document with its owner, for the few listings that span every user."""

    id: str
    user_id: str | None
    doc: Doc


def email_key(email: str) -> str:
    """The case-insensitive form that email uniqueness and look-ups use (and audit logs)."""
    return email.strip().lower()
