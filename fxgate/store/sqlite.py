"""The embedded default store: one SQLite file, driven from one dedicated thread.

sqlite3 calls block, so none of them runs on the event loop: a single-worker
``ThreadPoolExecutor`` owns the one connection (created on that thread, and sqlite3's
``check_same_thread`` then refuses any other), and every method hands it a function.
One worker also serialises this process's statements without a lock of our own.

The file is shared with CLI commands (``fxgate users add``, ``fxgate keys rotate``) while
the daemon runs: WAL mode, ``busy_timeout`` and ``BEGIN IMMEDIATE`` writes (see
``sqlite_schema.configure`` and ``sqlite_tx.write_tx``) make that safe, and the
database's own constraints (unique email, one active signing key, the compare-and-set
updates) hold across processes, not only within one.

A cancelled await does not cancel the statement: the worker finishes (and commits) it.
The SQL lives in ``sqlite_auth`` and ``sqlite_trading``; this module is the facade.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from fxgate.store import sqlite_auth as auth
from fxgate.store import sqlite_trading as trading
from fxgate.store.port import (
    DEFAULT_HISTORY_RETENTION,
    PENDING_ORDER_STATUSES,
    StoreError,
    StoreKind,
)
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
    require_ticket,
)
from fxgate.store.sqlite_schema import configure, migrate
from fxgate.store.sqlite_tx import unavailable_from

P = ParamSpec("P")
T = TypeVar("T")

#: The file name inside ``state_dir``.
FILE_NAME = "fxgate.sqlite3"

#: Writes to the expiring tables between two opportunistic purges.
PURGE_EVERY = 500


class SQLiteStore:
    """``port.Store`` on a SQLite file; see the module docstring for the threading."""

    def __init__(self, path: Path, *, history_retention: int = DEFAULT_HISTORY_RETENTION) -> None:
        if history_retention < 1:
            raise ValueError("history_retention must be at least 1")
        self._path = path
        self._retention = history_retention
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched on the worker thread only
        self._expiring_writes = 0  # likewise

    @classmethod
    def in_state_dir(cls, state_dir: Path, **kwargs: Any) -> SQLiteStore:
        return cls(state_dir / FILE_NAME, **kwargs)

    @property
    def kind(self) -> StoreKind:
        return "sqlite"

    @property
    def path(self) -> Path:
        return self._path

    # -- the worker thread --------------------------------------------------------------

    async def _run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, ...)`` on the worker thread and await its result."""
        if self._executor is None:
            raise StoreError("the SQLite store is not open")

        def bound(conn: sqlite3.Connection) -> T:
            return fn(conn, *args, **kwargs)

        call = functools.partial(self._on_worker, bound)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _on_worker(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise StoreError("the SQLite store is not open")
        try:
            return fn(self._conn)
        except sqlite3.OperationalError as exc:
            unavailable = unavailable_from(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    def _connect(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; sqlite_tx issues BEGIN/COMMIT.
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            configure(conn)
            migrate(conn)
            auth.purge_expired(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _expiring(self, fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        """Wrap a write to an expiring table so that every ``PURGE_EVERY``-th purges.

        SQLite has no TTL indexes; this bounds the tables without a timer of our own.
        """

        def run(conn: sqlite3.Connection) -> T:
            result = fn(conn)
            self._expiring_writes += 1
            if self._expiring_writes >= PURGE_EVERY:
                self._expiring_writes = 0
                auth.purge_expired(conn)
            return result

        return run

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fxgate-sqlite")
        self._executor = executor
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except BaseException:
            self._executor = None
            executor.shutdown(wait=False)
            raise

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            # The worker is idle once _disconnect returned, so this does not block.
            executor.shutdown(wait=False)

    async def ping(self) -> bool:
        try:
            await self._run(lambda conn: conn.execute("SELECT 1").fetchone())
        except Exception:
            return False
        return True

    async def purge_expired(self) -> int:
        return await self._run(auth.purge_expired)

    # -- users ------------------------------------------------------------------------------

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
        return await self._run(
            auth.create_user,
            email=email,
            name=name,
            role=role,
            password_hash=password_hash,
            tier=tier,
            preferences=preferences,
            user_id=user_id,
        )

    async def get_user(self, user_id: str) -> User | None:
        return await self._run(auth.get_user, user_id)

    async def get_user_by_email(self, email: str) -> User | None:
        return await self._run(auth.get_user_by_email, email)

    async def list_users(self, *, offset: int = 0, limit: int = 50) -> tuple[list[User], int]:
        return await self._run(auth.list_users, offset=offset, limit=limit)

    async def users_changed_since(self, since: datetime) -> list[User]:
        return await self._run(auth.users_changed_since, since)

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
        changes = {
            "name": name,
            "role": role,
            "password_hash": password_hash,
            "tier": tier,
            "disabled": disabled,
            "preferences": preferences,
        }
        return await self._run(auth.update_user, user_id, changes)

    # -- API keys -----------------------------------------------------------------------------

    async def create_api_key(
        self, *, user_id: str, key_id: str, secret: str, name: str = ""
    ) -> ApiKey:
        return await self._run(
            auth.create_api_key, user_id=user_id, key_id=key_id, secret=secret, name=name
        )

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        return await self._run(auth.get_api_key, key_id)

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        return await self._run(auth.list_api_keys, user_id)

    async def revoke_api_key(self, key_id: str) -> bool:
        return await self._run(auth.revoke_api_key, key_id)

    # -- signing keys -------------------------------------------------------------------------

    async def add_signing_key(
        self, *, kid: str, secret: str, algorithm: str = "HS256"
    ) -> SigningKey:
        return await self._run(auth.add_signing_key, kid=kid, secret=secret, algorithm=algorithm)

    async def list_signing_keys(self) -> list[SigningKey]:
        return await self._run(auth.list_signing_keys)

    async def retire_signing_key(self, kid: str) -> bool:
        return await self._run(auth.retire_signing_key, kid)

    # -- refresh tokens, revoked jtis, nonces ---------------------------------------------

    async def save_refresh_token(
        self, *, jti: str, family_id: str, user_id: str, expires_at: datetime
    ) -> RefreshToken:
        save = functools.partial(
            auth.save_refresh_token,
            jti=jti,
            family_id=family_id,
            user_id=user_id,
            expires_at=expires_at,
        )
        return await self._run(self._expiring(save))

    async def get_refresh_token(self, jti: str) -> RefreshToken | None:
        return await self._run(auth.get_refresh_token, jti)

    async def mark_refresh_token_used(self, jti: str) -> bool:
        return await self._run(auth.mark_refresh_token_used, jti)

    async def revoke_refresh_family(self, family_id: str) -> int:
        return await self._run(auth.revoke_refresh_tokens, "family_id", family_id)

    async def revoke_user_refresh_tokens(self, user_id: str) -> int:
        return await self._run(auth.revoke_refresh_tokens, "user_id", user_id)

    async def revoke_jti(self, jti: str, expires_at: datetime) -> None:
        await self._run(
            self._expiring(functools.partial(auth.revoke_jti, jti=jti, expires_at=expires_at))
        )

    async def is_jti_revoked(self, jti: str) -> bool:
        return await self._run(auth.is_jti_revoked, jti)

    async def remember_nonce(self, key: str, expires_at: datetime) -> bool:
        remember = functools.partial(auth.remember_nonce, key=key, expires_at=expires_at)
        return await self._run(self._expiring(remember))

    # -- audit --------------------------------------------------------------------------------

    async def append_audit(
        self,
        actor: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> AuditEntry:
        return await self._run(auth.append_audit, actor, action, target, details, ts)

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
        return await self._run(
            auth.list_audit,
            actor=actor,
            action=action,
            target=target,
            start=start,
            end=end,
            offset=offset,
            limit=limit,
        )

    # -- trading documents --------------------------------------------------------------------

    async def save_trading(
        self,
        *,
        orders: Sequence[Doc] = (),
        deals: Sequence[Doc] = (),
        positions: Sequence[Doc] = (),
        accounts: Sequence[Doc] = (),
    ) -> None:
        await self._run(
            trading.save_trading,
            orders=list(orders),
            deals=list(deals),
            positions=list(positions),
            accounts=list(accounts),
        )

    async def get_order(self, user_id: str, order_id: str) -> Doc | None:
        sql = "SELECT doc FROM orders WHERE id = ? AND user_id = ?"
        return await self._run(trading.get_one, sql, (order_id, user_id))

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> Doc | None:
        sql = "SELECT doc FROM orders WHERE user_id = ? AND client_order_id = ?"
        return await self._run(trading.get_one, sql, (user_id, client_order_id))

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
        return await self._run(
            trading.list_orders,
            user_id,
            status=status,
            symbol=symbol,
            start=start,
            end=end,
            offset=offset,
            limit=limit,
        )

    async def list_pending_orders(
        self, statuses: Sequence[str] = PENDING_ORDER_STATUSES
    ) -> list[Doc]:
        return await self._run(trading.list_pending_orders, list(statuses))

    async def get_position(self, user_id: str, ticket: int) -> Doc | None:
        require_ticket({"ticket": ticket}, "position")
        sql = "SELECT doc FROM positions WHERE ticket = ? AND user_id = ?"
        return await self._run(trading.get_one, sql, (ticket, user_id))

    async def list_positions(self, user_id: str, status: str | None = None) -> list[Doc]:
        args: tuple[str, ...] = (user_id,)
        if status is None:
            sql = "SELECT doc FROM positions WHERE user_id = ? ORDER BY ticket"
        else:
            sql = "SELECT doc FROM positions WHERE user_id = ? AND status = ? ORDER BY ticket"
            args = (user_id, status)
        return await self._run(trading.get_all, sql, args)

    async def list_open_positions(self) -> list[Doc]:
        sql = "SELECT doc FROM positions WHERE status = 'open' ORDER BY ticket"
        return await self._run(trading.get_all, sql)

    async def list_deals(
        self,
        user_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
        symbol: str | None = None,
    ) -> tuple[list[Doc], int]:
        return await self._run(
            trading.list_deals,
            user_id,
            symbol=symbol,
            start=start,
            end=end,
            offset=offset,
            limit=limit,
        )

    async def get_account(self, user_id: str) -> Doc | None:
        return await self._run(
            trading.get_one, "SELECT doc FROM accounts WHERE user_id = ?", (user_id,)
        )

    async def list_accounts(self) -> list[Doc]:
        return await self._run(trading.get_all, "SELECT doc FROM accounts ORDER BY user_id")

    async def next_sequence(self, name: str) -> int:
        return await self._run(trading.next_sequence, name)

    # -- alerts, strategies, signals -------------------------------------------------------

    async def save_alert(self, user_id: str, alert_id: str, alert: Doc) -> None:
        await self._run(trading.save_owned, "alerts", user_id, alert_id, alert)

    async def get_alert(self, user_id: str, alert_id: str) -> Doc | None:
        sql = "SELECT doc FROM alerts WHERE id = ? AND user_id = ?"
        return await self._run(trading.get_one, sql, (alert_id, user_id))

    async def list_alerts(self, user_id: str) -> list[Doc]:
        sql = "SELECT doc FROM alerts WHERE user_id = ? ORDER BY created_at, id"
        return await self._run(trading.get_all, sql, (user_id,))

    async def list_all_alerts(self) -> list[OwnedDoc]:
        return await self._run(trading.list_all_owned, "alerts")

    async def delete_alert(self, user_id: str, alert_id: str) -> bool:
        return await self._run(trading.delete_owned, "alerts", user_id, alert_id)

    async def save_strategy(self, user_id: str, strategy_id: str, doc: Doc) -> None:
        await self._run(trading.save_owned, "strategies", user_id, strategy_id, doc)

    async def get_strategy(self, user_id: str, strategy_id: str) -> Doc | None:
        sql = "SELECT doc FROM strategies WHERE id = ? AND user_id = ?"
        return await self._run(trading.get_one, sql, (strategy_id, user_id))

    async def list_strategies(self, user_id: str) -> list[Doc]:
        sql = "SELECT doc FROM strategies WHERE user_id = ? ORDER BY created_at, id"
        return await self._run(trading.get_all, sql, (user_id,))

    async def delete_strategy(self, user_id: str, strategy_id: str) -> bool:
        return await self._run(trading.delete_owned, "strategies", user_id, strategy_id)

    async def save_signal(self, signal_id: str, user_id: str | None, doc: Doc) -> None:
        await self._run(trading.save_signal, signal_id, user_id, doc)

    async def get_signal(self, signal_id: str) -> OwnedDoc | None:
        return await self._run(trading.get_signal, signal_id)

    async def list_signals(
        self, user_id: str | None, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[Doc], int]:
        return await self._run(trading.list_signals, user_id, offset=offset, limit=limit)

    # -- candles ------------------------------------------------------------------------------

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
        candle = Candle(symbol, interval, open_time, open, high, low, close, volume)
        await self._run(trading.upsert_candles, [candle])

    async def upsert_candles(self, candles: Sequence[Candle]) -> None:
        await self._run(trading.upsert_candles, list(candles))

    async def list_candles(
        self,
        symbol: str,
        interval: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        return await self._run(
            trading.list_candles, symbol, interval, start=start, end=end, limit=limit
        )

    # -- channel history ------------------------------------------------------------------

    async def append_history(
        self, stream: str, offset: int, epoch: str, payload: Mapping[str, Any]
    ) -> None:
        await self._run(trading.append_history, stream, offset, epoch, payload, self._retention)

    async def read_history(
        self, stream: str, after_offset: int, limit: int = 1000
    ) -> list[HistoryEntry]:
        return await self._run(trading.read_history, stream, after_offset, limit)

    async def last_history(self, stream: str) -> HistoryEntry | None:
        return await self._run(trading.last_history, stream)
