"""The store port: everything fxgate keeps across restarts, split by area.

Each area is a Protocol of its own (``users``, ``api_keys``, ``signing_keys``,
``sessions``, ``audit``, ``trading``, ``candles``, ``strategies``, ``signals``,
``history``, ``usage``), and a
service is handed only the areas it uses: the key ring gets ``signing_keys``, the
API-key service ``api_keys`` and ``audit``. :class:`Store` bundles them with the lifecycle; the node
holds it. ``sqlite`` (the embedded default) and ``mongodb`` implement every area, and
``tests/store/`` runs one contract suite against both, so a behaviour documented here
holds for either backend unless the docstring says otherwise.

Conventions shared by every area:

- Money, prices and volumes are Decimal strings (or Decimals in the domain's trading
  records); the store never does arithmetic.
- Datetimes go in tz-aware (naive ones are taken as UTC) and come back tz-aware UTC,
  truncated to milliseconds.
- Lists that a client pages through return ``(items, total)``, where ``total`` counts
  every match regardless of ``offset``/``limit``; negative paging raises ValueError.
- A uniqueness violation raises :class:`StoreConflictError`; a backend that cannot be
  reached raises :class:`StoreUnavailableError` (``errors``).
"""

from __future__ import annotations

from typing import Literal, Protocol

from fxgate.services.ports.store.api_keys import ApiKeyStore
from fxgate.services.ports.store.audit import AuditLog
from fxgate.services.ports.store.candles import CandleStore
from fxgate.services.ports.store.history import HistoryStore
from fxgate.services.ports.store.sessions import SessionStore
from fxgate.services.ports.store.signals import SignalStore
from fxgate.services.ports.store.signing_keys import SigningKeyStore
from fxgate.services.ports.store.strategies import StrategyStore
from fxgate.services.ports.store.trading import TradingStore
from fxgate.services.ports.store.usage import UsageStore
from fxgate.services.ports.store.users import UserStore

StoreKind = Literal["sqlite", "mongodb"]


class Store(Protocol):
    """Persistent state of one fxgate deployment: the lifecycle, and one object per area."""

    @property
    def kind(self) -> StoreKind:
        """Which backend this is, for ``/health`` and the logs."""
        ...

    @property
    def users(self) -> UserStore: ...

    @property
    def api_keys(self) -> ApiKeyStore: ...

    @property
    def signing_keys(self) -> SigningKeyStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def trading(self) -> TradingStore: ...

    @property
    def candles(self) -> CandleStore: ...

    @property
    def strategies(self) -> StrategyStore: ...

    @property
    def signals(self) -> SignalStore: ...

    @property
    def history(self) -> HistoryStore: ...

    @property
    def usage(self) -> UsageStore: ...

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
