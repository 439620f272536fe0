"""The one thread that owns the SQLite connection, shared by every area of the store.

sqlite3 calls block, so none of them runs on the event loop: a single-worker
``ThreadPoolExecutor`` owns the one connection (created on that thread, and sqlite3's
``check_same_thread`` then refuses any other), and every area hands it a function of
the connection. One worker also serialises this process's statements without a lock of
our own. A cancelled await does not cancel the statement: the worker finishes (and
commits) it.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from fxgate.services.ports.store.errors import StoreError
from fxgate.store.rules import now
from fxgate.store.sqlite.schema import configure, migrate
from fxgate.store.sqlite.tx import ts, unavailable_from, write_tx

P = ParamSpec("P")
T = TypeVar("T")

#: Writes to the expiring tables between two opportunistic purges.
PURGE_EVERY = 500

#: Tables whose rows carry ``expires_at`` (refresh tokens, revoked jtis, nonces).
EXPIRING_TABLES = ("refresh_tokens", "revoked_jtis", "nonces")


def purge_expired(conn: sqlite3.Connection) -> int:
    cutoff = ts(now())
    removed = 0
    with write_tx(conn):
        for table in EXPIRING_TABLES:
            cur = conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (cutoff,))
            removed += cur.rowcount
    return removed


class Worker:
    """The connection and its thread; ``open``/``close`` are the store's lifecycle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched on the worker thread only
        self._expiring_writes = 0  # likewise

    async def run(
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

    async def run_expiring(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`run` for a write to an expiring table: every ``PURGE_EVERY``-th purges.

        SQLite has no TTL indexes; this bounds the tables without a timer of our own.
        """

        def counted(conn: sqlite3.Connection) -> T:
            result = fn(conn, *args, **kwargs)
            self._expiring_writes += 1
            if self._expiring_writes >= PURGE_EVERY:
                self._expiring_writes = 0
                purge_expired(conn)
            return result

        return await self.run(counted)

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; tx issues BEGIN/COMMIT.
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            configure(conn)
            migrate(conn)
            purge_expired(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

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
