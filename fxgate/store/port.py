"""The store port: everything fxgate keeps across restarts, behind one async interface.

Services and the hub depend on this Protocol only; ``sqlite`` (the embedded default) and
``mongodb`` implement it, and ``tests/store/test_contract.py`` runs one suite against
both, so a behaviour documented here holds for either backend unless the docstring says
otherwise.

Conventions shared by every method:

- Money, prices and volumes are Decimal strings; the store never does arithmetic.
- Datetimes go in tz-aware (naive ones are taken as UTC) and come back tz-aware UTC,
  truncated to milliseconds.
- Trading documents are JSON-safe dicts owned by the engine; the store indexes a few of
  their fields (see each method) and returns them as saved.
- Lists that a client pages through return ``(items, total)``, where ``total`` counts
  every match regardless of ``offset``/``limit``.
- A uniqueness violation raises :class:`StoreConflictError`; a backend that cannot be
  reached raises :class:`StoreUnavailableError`. Both are ``FxgateError`` subclasses,
  so the web layer answers 409 and 503 without special cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from fxgate.domain.errors import ConflictError, ErrorCode, FxgateError
from fxgate.store.records import (
    ApiKey,
    AuditEntry,
    Candle,
    Doc,
    HistoryEntry,
    OwnedDoc,
    RefreshToken,
    SigningKey,
    User,
)

StoreKind = Literal["sqlite", "mongodb"]

#: What ``list_pending_orders`` restores by default: orders still working at the broker.
PENDING_ORDER_STATUSES: tuple[str, ...] = ("pending",)

#: Messages kept per channel stream for ``since`` recovery, unless configured otherwise.
DEFAULT_HISTORY_RETENTION = 1000


class StoreError(FxgateError):
    """A store failure that is not the client's doing (a bug or a broken deployment)."""


class StoreConflictError(ConflictError, StoreError):
    """A write would break a uniqueness rule (email, client order id, key id, ...).

    The message names the rule, never the other record, so it is safe to show.
    """


class StoreUnavailableError(StoreError):
    """The backend cannot be reached right now; retrying later may succeed."""

    code = ErrorCode.SERVICE_UNAVAILABLE


class Store(Protocol):
    """Persistent state of one fxgate deployment (users, keys, trading, history)."""

    # -- lifecycle ---------------------------------------------------------------

    @property
    def kind(self) -> StoreKind:
        """Which backend this is, for ``/health`` and the logs."""
        ...

    async def open(self) -> None:
        """Connect, and create or migrate the schema and indexes. Idempotent."""
        ...

    async def close(self) -> None:
        """Release connections and threads. Idempotent; ``open()`` may follow."""
        ...

    async def ping(self) -> bool:
        """Whether the backend answers now; never raises (it feeds ``/ready``)."""
        ...

    async def purge_expired(self) -> int:
        """Delete refresh tokens, revoked jtis and nonces past ``expires_at``.

        MongoDB's TTL indexes do this by themselves (within a minute or so); SQLite
        does it on ``open()`` and every few hundred writes to those tables. Calling it
        periodically bounds the tables more tightly. Returns how many rows went.
        """
        ...

    # -- users -------------------------------------------------------------------

    async def create_user(
        self,
        *,
        email: str,
        name: str,
        role: str,
        password_hash: str | None = None,
        tier: str = "free",
        preferences: Mapping[str, Any] | None = None,
        user_id: str | None = None,
    ) -> User:
        """Create a user; ``user_id`` defaults to a fresh random id.

        Raises StoreConflictError when the email (compared case-insensitively) or the
        id is taken.
        """
        ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_user_by_email(self, email: str) -> User | None:
        """Look a user up by email, ignoring case (how people type at a login form)."""
        ...

    async def list_users(self, *, offset: int = 0, limit: int = 50) -> tuple[list[User], int]:
        """Users in creation order, for the admin CLI and API."""
        ...

    async def users_changed_since(self, since: datetime) -> list[User]:
        """Users created or updated at or after ``since`` (their ``updated_at``): how a
        daemon notices, in one cheap read, a user disabled by the CLI elsewhere."""
        ...

    async def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        role: str | None = None,
        password_hash: str | None = None,
        tier: str | None = None,
        disabled: bool | None = None,
        preferences: Mapping[str, Any] | None = None,
    ) -> User | None:
        """Change the given fields (None leaves a field alone) and bump ``updated_at``.

        Returns the updated user, or None when there is no such user. Disabling a
        user does not revoke their tokens: the auth service does that explicitly.
        """
        ...

    # -- API keys ----------------------------------------------------------------

    async def create_api_key(
        self, *, user_id: str, key_id: str, secret: str, name: str = ""
    ) -> ApiKey:
        """Store a key the auth service generated.

        Raises StoreConflictError when ``key_id`` exists or ``user_id`` does not.
        """
        ...

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """Revoked keys are returned too (with ``revoked_at``): the caller refuses them."""
        ...

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        """A user's keys, oldest first, revoked ones included."""
        ...

    async def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; False when it does not exist or was revoked already."""
        ...

    # -- JWT signing keys ----------------------------------------------------------

    async def add_signing_key(
        self, *, kid: str, secret: str, algorithm: str = "HS256"
    ) -> SigningKey:
        """Add a key and make it the only active one, atomically.

        The previously active key stays (inactive, not retired) to verify the tokens
        it signed. Raises StoreConflictError when ``kid`` exists.
        """
        ...

    async def list_signing_keys(self) -> list[SigningKey]:
        """The whole ring, oldest first; daemons re-read it to pick up rotations."""
        ...

    async def retire_signing_key(self, kid: str) -> bool:
        """Stop accepting tokens signed with ``kid``.

        False when there is no such key or it is retired already. Raises
        StoreConflictError for the active key: retiring it would leave nothing to
        sign with, so rotate first.
        """
        ...

    # -- refresh tokens, revoked access tokens, nonces ----------------------------

    async def save_refresh_token(
        self, *, jti: str, family_id: str, user_id: str, expires_at: datetime
    ) -> RefreshToken:
        """Record a newly issued refresh token. Raises StoreConflictError on a known jti."""
        ...

    async def get_refresh_token(self, jti: str) -> RefreshToken | None: ...

    async def mark_refresh_token_used(self, jti: str) -> bool:
        """Spend a refresh token, as one atomic compare-and-set.

        True for exactly one caller. False when the token is unknown, revoked or was
        used already: the last case is reuse, and the auth service then revokes the
        family. Expiry is not checked here; the caller has the token and the clock.
        """
        ...

    async def revoke_refresh_family(self, family_id: str) -> int:
        """Revoke every not yet revoked token of a family; returns how many."""
        ...

    async def revoke_user_refresh_tokens(self, user_id: str) -> int:
        """Revoke all of a user's refresh tokens (password change, disabling)."""
        ...

    async def revoke_jti(self, jti: str, expires_at: datetime) -> None:
        """Deny an access token until it expires by itself (logout)."""
        ...

    async def is_jti_revoked(self, jti: str) -> bool:
        """True while the revocation is kept, which is at least until ``expires_at``."""
        ...

    async def remember_nonce(self, key: str, expires_at: datetime) -> bool:
        """Record an API-signature nonce; False when it is already known and unexpired.

        This is the replay check of seed 004's signed requests: atomic, so two
        concurrent requests with one nonce cannot both pass.
        """
        ...

    # -- audit log -----------------------------------------------------------------

    async def append_audit(
        self,
        actor: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry (``ts`` defaults to now). ``details`` must hold no secrets."""
        ...

    async def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[AuditEntry], int]:
        """Matching entries, newest first; ``start <= ts < end``."""
        ...

    # -- trading documents -----------------------------------------------------------

    async def save_trading(
        self,
        *,
        orders: Sequence[Doc] = (),
        deals: Sequence[Doc] = (),
        positions: Sequence[Doc] = (),
        accounts: Sequence[Doc] = (),
    ) -> None:
        """Upsert a batch of engine records, all or nothing where the backend allows.

        Keys: orders by ``id`` (a string, with ``user_id``; ``client_order_id``
        unique per user when not null; ``ticket`` an int or null; ``created_at``
        ISO 8601), positions and deals by integer ``ticket`` (with ``user_id``; a
        deal's ``time`` is ISO 8601 or epoch seconds), accounts by ``user_id``.
        A document missing a key (or with an unreadable timestamp) raises ValueError
        and nothing is written; a taken client order id raises StoreConflictError.

        SQLite writes the batch in one transaction: a failure writes nothing.
        MongoDB uses a multi-document transaction when the server is a replica set
        or a mongos; a standalone server (or mongomock) gets ordered upserts instead,
        and a failure leaves the records before the failing one written. The engine
        writes the whole current state of each record, so retrying the batch repairs
        that.
        """
        ...

    async def get_order(self, user_id: str, order_id: str) -> Doc | None:
        """An order of this user; another user's order is None, never leaked."""
        ...

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> Doc | None:
        """The order placed with this ``clientOrderId``: the idempotency look-up."""
        ...

    async def list_orders(
        self,
        user_id: str,
        status: str | None = None,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Doc], int]:
        """A user's orders, newest ``created_at`` first; ``start <= created_at < end``."""
        ...

    async def list_pending_orders(
        self, statuses: Sequence[str] = PENDING_ORDER_STATUSES
    ) -> list[Doc]:
        """Every user's orders in one of ``statuses``, to restore the engine at startup."""
        ...

    async def get_position(self, user_id: str, ticket: int) -> Doc | None: ...

    async def list_positions(self, user_id: str, status: str | None = None) -> list[Doc]:
        """A user's positions by ticket; ``status`` is ``open`` or ``closed``."""
        ...

    async def list_open_positions(self) -> list[Doc]:
        """Every user's open positions, to restore the engine at startup."""
        ...

    async def list_deals(
        self,
        user_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
        symbol: str | None = None,
    ) -> tuple[list[Doc], int]:
        """A user's deals, newest ``time`` first; ``start <= time < end``."""
        ...

    async def get_account(self, user_id: str) -> Doc | None: ...

    async def list_accounts(self) -> list[Doc]:
        """Every account, to restore the engine at startup."""
        ...

    async def next_sequence(self, name: str) -> int:
        """The next value (1, 2, ...) of a named counter, atomically, across restarts
        and across processes sharing the store (tickets must never repeat)."""
        ...

    # -- alerts, strategies, signals -------------------------------------------------

    async def save_alert(self, user_id: str, alert_id: str, alert: Doc) -> None:
        """Upsert a user's alert. Raises StoreConflictError if the id is another user's."""
        ...

    async def get_alert(self, user_id: str, alert_id: str) -> Doc | None: ...

    async def list_alerts(self, user_id: str) -> list[Doc]:
        """A user's alerts, oldest first."""
        ...

    async def list_all_alerts(self) -> list[OwnedDoc]:
        """Every user's alerts with their owners, to re-arm them at startup."""
        ...

    async def delete_alert(self, user_id: str, alert_id: str) -> bool: ...

    async def save_strategy(self, user_id: str, strategy_id: str, doc: Doc) -> None:
        """Upsert a user's strategy. Raises StoreConflictError if the id is another user's."""
        ...

    async def get_strategy(self, user_id: str, strategy_id: str) -> Doc | None: ...

    async def list_strategies(self, user_id: str) -> list[Doc]:
        """A user's strategies, oldest first."""
        ...

    async def delete_strategy(self, user_id: str, strategy_id: str) -> bool: ...

    async def save_signal(self, signal_id: str, user_id: str | None, doc: Doc) -> None:
        """Upsert a signal; ``user_id`` None makes it public (every user sees it)."""
        ...

    async def get_signal(self, signal_id: str) -> OwnedDoc | None: ...

    async def list_signals(
        self, user_id: str | None, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[Doc], int]:
        """Public signals plus the user's own (public only for None), newest first."""
        ...

    # -- candles -----------------------------------------------------------------------

    async def upsert_candle(
        self,
        symbol: str,
        interval: str,
        open_time: datetime,
        open: str,
        high: str,
        low: str,
        close: str,
        volume: str,
    ) -> None:
        """Insert or replace the bar at (symbol, interval, open_time)."""
        ...

    async def upsert_candles(self, candles: Sequence[Candle]) -> None:
        """Many bars in one round trip (a history backfill)."""
        ...

    async def list_candles(
        self,
        symbol: str,
        interval: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """The latest ``limit`` bars with ``start <= open_time < end``, oldest first
        (the order a chart draws them in)."""
        ...

    # -- channel history ---------------------------------------------------------------

    async def append_history(
        self, stream: str, offset: int, epoch: str, payload: Mapping[str, Any]
    ) -> None:
        """Keep one stream message for ``since`` recovery.

        A stream keeps one epoch: appending under a new epoch drops the old entries
        (their offsets mean nothing any more). Only the newest ``retention`` offsets
        (a constructor argument of each backend) are kept; an existing offset is
        replaced.
        """
        ...

    async def read_history(
        self, stream: str, after_offset: int, limit: int = 1000
    ) -> list[HistoryEntry]:
        """Entries with ``offset > after_offset``, oldest first, at most ``limit``."""
        ...

    async def last_history(self, stream: str) -> HistoryEntry | None:
        """The newest entry, so that a restarted hub continues a stream's offsets."""
        ...
