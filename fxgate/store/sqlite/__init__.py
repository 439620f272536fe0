"""The embedded default store: one SQLite file, driven from one dedicated thread.

One module per area (``users``, ``api_keys``, ``signing_keys``, ``sessions``, ``audit``,
``trading``, ``candles``, ``strategies``, ``signals``, ``history``, ``usage``), each a
class over the shared :class:`~fxgate.store.sqlite.worker.Worker` that owns the
connection and its thread;
:class:`SQLiteStore` bundles them with the lifecycle.

The file is shared with CLI commands (``fxgate users add``, ``fxgate keys rotate``) while
the daemon runs: WAL mode, ``busy_timeout`` and ``BEGIN IMMEDIATE`` writes (see
``schema.configure`` and ``tx.write_tx``) make that safe, and the database's own
constraints (unique email, one active signing key, the compare-and-set updates) hold
across processes, not only within one.
"""

from __future__ import annotations

from pathlib import Path

from fxgate.services.ports.store import StoreKind
from fxgate.store.sqlite.api_keys import SQLiteApiKeys
from fxgate.store.sqlite.audit import SQLiteAudit
from fxgate.store.sqlite.candles import SQLiteCandles
from fxgate.store.sqlite.history import SQLiteHistory
from fxgate.store.sqlite.sessions import SQLiteSessions
from fxgate.store.sqlite.signals import SQLiteSignals
from fxgate.store.sqlite.signing_keys import SQLiteSigningKeys
from fxgate.store.sqlite.strategies import SQLiteStrategies
from fxgate.store.sqlite.trading import SQLiteTrading
from fxgate.store.sqlite.usage import SQLiteUsage
from fxgate.store.sqlite.users import SQLiteUsers
from fxgate.store.sqlite.worker import Worker, purge_expired

#: The file name inside ``state_dir``.
FILE_NAME = "fxgate.sqlite3"


class SQLiteStore:
    """``Store`` on a SQLite file; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self._worker = Worker(path)
        self.users = SQLiteUsers(self._worker)
        self.api_keys = SQLiteApiKeys(self._worker)
        self.signing_keys = SQLiteSigningKeys(self._worker)
        self.sessions = SQLiteSessions(self._worker)
        self.audit = SQLiteAudit(self._worker)
        self.trading = SQLiteTrading(self._worker)
        self.candles = SQLiteCandles(self._worker)
        self.strategies = SQLiteStrategies(self._worker)
        self.signals = SQLiteSignals(self._worker)
        self.history = SQLiteHistory(self._worker)
        self.usage = SQLiteUsage(self._worker)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> SQLiteStore:
        return cls(state_dir / FILE_NAME)

    @property
    def kind(self) -> StoreKind:
        return "sqlite"

    @property
    def path(self) -> Path:
        return self._worker.path

    async def open(self) -> None:
        await self._worker.open()

    async def close(self) -> None:
        await self._worker.close()

    async def ping(self) -> bool:
        try:
            await self._worker.run(lambda conn: conn.execute("SELECT 1").fetchone())
        except Exception:
            return False
        return True

    async def purge_expired(self) -> int:
        return await self._worker.run(purge_expired)
