"""The MongoDB store (motor), for deployments with several workers or machines.

The only package of fxgate that imports motor or pymongo. One module per area, each a
class over the shared :class:`~fxgate.store.mongodb.conn.Mongo` connection;
:class:`MongoStore` bundles them with the lifecycle. Every collection is created
lazily by MongoDB; ``open()`` creates the indexes a production deployment needs
(unique email, unique per-user client order id, TTL on expiring records, the listing
indexes), so an empty database is ready after the first start.

Degrading where the server (or mongomock in CI) cannot do something, rather than
failing:

- Multi-document transactions need a replica set or a mongos. ``open()`` asks the
  server (``hello``); without them, ``trading.save`` and ``signing_keys.add`` run their
  writes in order, and the port's docstrings say what that means. A server that
  refuses a transaction later (a misreported topology) switches to the same path.
- TTL indexes delete expired tokens and nonces within about a minute; where an index
  option is not supported, the index is created without it and ``purge_expired()``
  does the deleting. Queries never rely on the TTL monitor: expiry that matters for
  correctness (nonces) is checked in the query itself.

Document shapes and the index list live in ``docs``, which imports no driver.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo.errors import OperationFailure

from fxgate.services.ports.store import StoreKind
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.api_keys import MongoApiKeys
from fxgate.store.mongodb.audit import MongoAudit
from fxgate.store.mongodb.candles import MongoCandles
from fxgate.store.mongodb.conn import Collection, Mongo, translating_errors
from fxgate.store.mongodb.history import MongoHistory
from fxgate.store.mongodb.sessions import MongoSessions
from fxgate.store.mongodb.signals import MongoSignals
from fxgate.store.mongodb.signing_keys import MongoSigningKeys
from fxgate.store.mongodb.strategies import MongoStrategies
from fxgate.store.mongodb.trading import MongoTrading
from fxgate.store.mongodb.usage import MongoUsage
from fxgate.store.mongodb.users import MongoUsers
from fxgate.store.rules import now

log = logging.getLogger(__name__)

MongoDoc = docs.MongoDoc

#: IndexOptionsConflict, IndexKeySpecsConflict: an index of that name exists already.
_INDEX_EXISTS_DIFFERENTLY = {85, 86}


@translating_errors
class MongoStore:
    """``Store`` on MongoDB; see the module docstring for what degrades where."""

    def __init__(
        self,
        *,
        uri: str | None = None,
        database: str = "fxgate",
        client: AsyncIOMotorClient[MongoDoc] | None = None,
        server_selection_timeout_ms: int = 5000,
    ) -> None:
        """Either ``uri`` (the store owns and closes the client) or an existing
        ``client`` (tests inject mongomock's; the caller closes it)."""
        if (uri is None) == (client is None):
            raise ValueError("give exactly one of uri and client")
        self._uri = uri
        self._injected = client
        self._database = database
        self._timeout_ms = server_selection_timeout_ms
        self._m = Mongo()
        self.users = MongoUsers(self._m)
        self.api_keys = MongoApiKeys(self._m)
        self.signing_keys = MongoSigningKeys(self._m)
        self.sessions = MongoSessions(self._m)
        self.audit = MongoAudit(self._m)
        self.trading = MongoTrading(self._m)
        self.candles = MongoCandles(self._m)
        self.strategies = MongoStrategies(self._m)
        self.signals = MongoSignals(self._m)
        self.history = MongoHistory(self._m)
        self.usage = MongoUsage(self._m)

    @property
    def kind(self) -> StoreKind:
        return "mongodb"

    @property
    def supports_transactions(self) -> bool:
        """Whether multi-document writes are atomic on this deployment (after open)."""
        return self._m.transactions

    async def open(self) -> None:
        if self._m.db is not None:
            return
        client = self._injected
        if client is None:
            client = AsyncIOMotorClient(
                self._uri, tz_aware=True, serverSelectionTimeoutMS=self._timeout_ms
            )
        db = client[self._database]
        try:
            await db.command("ping")
            transactions = await self._detect_transactions(db)
            for collection, keys, options in docs.INDEXES:
                await self._ensure_index(db[collection], keys, options)
        except BaseException:
            if self._injected is None:
                client.close()
            raise
        self._m.client, self._m.db, self._m.transactions = client, db, transactions
        log.info("mongodb store open (transactions: %s)", transactions)

    @staticmethod
    async def _detect_transactions(db: AsyncIOMotorDatabase[MongoDoc]) -> bool:
        for command in ("hello", "isMaster"):
            try:
                hello = await db.command(command)
            except (NotImplementedError, OperationFailure):
                continue
            sessions = hello.get("logicalSessionTimeoutMinutes") is not None
            replicated = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
            return sessions and replicated
        return False

    @staticmethod
    async def _ensure_index(coll: Collection, keys: docs.Sort, options: Mapping[str, Any]) -> None:
        try:
            await coll.create_index(keys, **options)
        except (NotImplementedError, OperationFailure) as exc:
            if isinstance(exc, OperationFailure) and exc.code in _INDEX_EXISTS_DIFFERENTLY:
                # An operator's own variant of the index: keep it, and say so.
                log.warning("index %s on %s differs from fxgate's: %s", keys, coll.name, exc)
                return
            if "expireAfterSeconds" not in options:
                raise
            # The TTL is housekeeping only: purge_expired() does the same job.
            plain = {k: v for k, v in options.items() if k != "expireAfterSeconds"}
            log.warning("TTL index on %s not available (%s); relying on purge", coll.name, exc)
            await coll.create_index(keys, **plain)

    async def close(self) -> None:
        client, self._m.client, self._m.db = self._m.client, None, None
        if client is not None and self._injected is None:
            client.close()

    async def ping(self) -> bool:
        if self._m.db is None:
            return False
        try:
            await self._m.db.command("ping")
        except Exception:
            return False
        return True

    async def purge_expired(self) -> int:
        cutoff = now()
        removed = 0
        for name in ("refresh_tokens", "revoked_jtis", "nonces"):
            result = await self._m.c(name).delete_many({"expires_at": {"$lte": cutoff}})
            removed += result.deleted_count
        return removed
