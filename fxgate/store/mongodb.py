"""The MongoDB store (motor), for deployments with several workers or machines.

The only module of fxgate that imports motor or pymongo. Every collection is created
lazily by MongoDB; ``open()`` creates the indexes a production deployment needs
(unique email, unique per-user client order id, TTL on expiring records, the listing
indexes), so an empty database is ready after the first start.

Degrading where the server (or mongomock in CI) cannot do something, rather than
failing:

- Multi-document transactions need a replica set or a mongos. ``open()`` asks the
  server (``hello``); without them, ``save_trading`` and ``add_signing_key`` run their
  writes in order, and the docstrings of ``port.Store`` say what that means. A server
  that refuses a transaction later (a misreported topology) switches to the same path.
- TTL indexes delete expired tokens and nonces within about a minute; where an index
  option is not supported, the index is created without it and ``purge_expired()``
  does the deleting. Queries never rely on the TTL monitor: expiry that matters for
  correctness (nonces) is checked in the query itself.

Document shapes and the index list live in ``mongodb_docs``, which imports no driver.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from motor.motor_asyncio import (
    AsyncIOMotorClient,
    AsyncIOMotorClientSession,
    AsyncIOMotorCollection,
    AsyncIOMotorDatabase,
)
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

from fxgate.store import mongodb_docs as docs
from fxgate.store.port import (
    DEFAULT_HISTORY_RETENTION,
    PENDING_ORDER_STATUSES,
    StoreConflictError,
    StoreError,
    StoreKind,
    StoreUnavailableError,
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
    check_paging,
    email_key,
    new_user,
    now,
    require_ticket,
    utc,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C", bound=type)
MongoDoc = docs.MongoDoc
Sort = docs.Sort
Collection = AsyncIOMotorCollection[MongoDoc]
Session = AsyncIOMotorClientSession

#: Sequence names the store uses for itself, apart from callers' ``next_sequence`` names.
_SIGNAL_SEQUENCE = "__store.signals"

#: How many single-document upserts a bulk call keeps in flight at once.
_CONCURRENT_WRITES = 32

#: Server error codes meaning "this deployment does not do transactions".
_NO_TRANSACTIONS = {20, 263}

#: IndexOptionsConflict, IndexKeySpecsConflict: an index of that name exists already.
_INDEX_EXISTS_DIFFERENTLY = {85, 86}


def _translating_errors(cls: C) -> C:
    """Turn "cannot reach the server" into StoreUnavailableError in every public method.

    A class decorator rather than fifty try blocks; the web layer then answers 503.
    """

    def wrap(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def translated(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except ConnectionFailure as exc:
                raise StoreUnavailableError("the database is unavailable, try again") from exc

        return translated

    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, wrap(member))
    return cls


def _dup_on(exc: DuplicateKeyError, field: str) -> bool:
    """Whether a duplicate-key error came from the index on ``field`` (else ``_id``)."""
    pattern = (exc.details or {}).get("keyPattern") or {}
    return field in pattern or field in str(exc)


@_translating_errors
class MongoStore:
    """``port.Store`` on MongoDB; see the module docstring for what degrades where."""

    def __init__(
        self,
        *,
        uri: str | None = None,
        database: str = "fxgate",
        client: AsyncIOMotorClient[MongoDoc] | None = None,
        history_retention: int = DEFAULT_HISTORY_RETENTION,
        server_selection_timeout_ms: int = 5000,
    ) -> None:
        """Either ``uri`` (the store owns and closes the client) or an existing
        ``client`` (tests inject mongomock's; the caller closes it)."""
        if (uri is None) == (client is None):
            raise ValueError("give exactly one of uri and client")
        if history_retention < 1:
            raise ValueError("history_retention must be at least 1")
        self._uri = uri
        self._injected = client
        self._database = database
        self._retention = history_retention
        self._timeout_ms = server_selection_timeout_ms
        self._client: AsyncIOMotorClient[MongoDoc] | None = None
        self._db: AsyncIOMotorDatabase[MongoDoc] | None = None
        self._transactions = False

    @property
    def kind(self) -> StoreKind:
        return "mongodb"

    @property
    def supports_transactions(self) -> bool:
        """Whether multi-document writes are atomic on this deployment (after open)."""
        return self._transactions

    def _c(self, name: str) -> Collection:
        if self._db is None:
            raise StoreError("the MongoDB store is not open")
        return self._db[name]

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        client = self._injected
        if client is None:
            client = AsyncIOMotorClient(
                self._uri, tz_aware=True, serverSelectionTimeoutMS=self._timeout_ms
            )
        db = client[self._database]
        try:
            await db.command("ping")
            self._transactions = await self._detect_transactions(db)
            for collection, keys, options in docs.INDEXES:
                await self._ensure_index(db[collection], keys, options)
        except BaseException:
            if self._injected is None:
                client.close()
            raise
        self._client, self._db = client, db
        log.info("mongodb store open (transactions: %s)", self._transactions)

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
    async def _ensure_index(coll: Collection, keys: Sort, options: Mapping[str, Any]) -> None:
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
        client, self._client, self._db = self._client, None, None
        if client is not None and self._injected is None:
            client.close()

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            await self._db.command("ping")
        except Exception:
            return False
        return True

    async def purge_expired(self) -> int:
        cutoff = now()
        removed = 0
        for name in ("refresh_tokens", "revoked_jtis", "nonces"):
            result = await self._c(name).delete_many({"expires_at": {"$lte": cutoff}})
            removed += result.deleted_count
        return removed

    async def _atomic(self, work: Callable[[Session | None], Coroutine[Any, Any, T]]) -> T:
        """Run ``work`` in a transaction where the deployment has them, else plainly.

        ``work`` must be idempotent: the driver retries it on transient errors.
        """
        if self._transactions and self._client is not None:
            try:
                async with await self._client.start_session() as session:
                    result: Any = await session.with_transaction(work)
                    return cast(T, result)
            except (OperationFailure, NotImplementedError) as exc:
                if isinstance(exc, OperationFailure) and exc.code not in _NO_TRANSACTIONS:
                    raise
                log.warning("no transactions here after all (%s); writing in order", exc)
                self._transactions = False
        return await work(None)

    async def _page(
        self,
        coll: Collection,
        query: Mapping[str, Any],
        sort: Sort,
        offset: int,
        limit: int,
    ) -> tuple[list[MongoDoc], int]:
        check_paging(offset, limit)
        total = await coll.count_documents(query)
        if limit == 0:  # MongoDB reads limit 0 as "no limit"
            return [], total
        rows = await coll.find(query, sort=sort, skip=offset, limit=limit).to_list(None)
        return rows, total

    async def _all(self, coll: Collection, query: Mapping[str, Any], sort: Sort) -> list[MongoDoc]:
        return await coll.find(query, sort=sort).to_list(None)

    async def _user_exists(self, user_id: str) -> None:
        """The foreign-key check SQLite does by itself, so both backends agree."""
        if await self._c("users").count_documents({"_id": user_id}, limit=1) == 0:
            raise StoreConflictError("the referenced user does not exist")

    # -- users --------------------------------------------------------------------------------

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
        user = new_user(
            email=email,
            name=name,
            role=role,
            password_hash=password_hash,
            tier=tier,
            preferences=preferences,
            user_id=user_id,
        )
        try:
            await self._c("users").insert_one(docs.user_document(user))
        except DuplicateKeyError as exc:
            if _dup_on(exc, "email_key"):
                raise StoreConflictError("a user with this email already exists") from exc
            raise StoreConflictError("a user with this id already exists") from exc
        return user

    async def get_user(self, user_id: str) -> User | None:
        d = await self._c("users").find_one({"_id": user_id})
        return None if d is None else docs.user_from(d)

    async def get_user_by_email(self, email: str) -> User | None:
        d = await self._c("users").find_one({"email_key": email_key(email)})
        return None if d is None else docs.user_from(d)

    async def list_users(self, *, offset: int = 0, limit: int = 50) -> tuple[list[User], int]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows, total = await self._page(self._c("users"), {}, sort, offset, limit)
        return [docs.user_from(d) for d in rows], total

    async def users_changed_since(self, since: datetime) -> list[User]:
        cursor = (
            self._c("users").find({"updated_at": {"$gte": since}}).sort("updated_at", ASCENDING)
        )
        return [docs.user_from(d) async for d in cursor]

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
        changes: dict[str, Any] = {
            "name": name,
            "role": role,
            "password_hash": password_hash,
            "tier": tier,
            "disabled": disabled,
            "preferences": None if preferences is None else dict(preferences),
        }
        sets = {k: v for k, v in changes.items() if v is not None}
        sets["updated_at"] = now()
        d = await self._c("users").find_one_and_update(
            {"_id": user_id}, {"$set": sets}, return_document=ReturnDocument.AFTER
        )
        return None if d is None else docs.user_from(d)

    # -- API keys -----------------------------------------------------------------------------

    async def create_api_key(
        self, *, user_id: str, key_id: str, secret: str, name: str = ""
    ) -> ApiKey:
        await self._user_exists(user_id)
        key = ApiKey(key_id=key_id, user_id=user_id, secret=secret, name=name, created_at=now())
        try:
            await self._c("api_keys").insert_one(
                {
                    "_id": key_id,
                    "user_id": user_id,
                    "name": name,
                    "secret": secret,
                    "created_at": key.created_at,
                    "revoked_at": None,
                }
            )
        except DuplicateKeyError as exc:
            raise StoreConflictError("an API key with this id already exists") from exc
        return key

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        d = await self._c("api_keys").find_one({"_id": key_id})
        return None if d is None else docs.api_key_from(d)

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows = await self._all(self._c("api_keys"), {"user_id": user_id}, sort)
        return [docs.api_key_from(d) for d in rows]

    async def revoke_api_key(self, key_id: str) -> bool:
        result = await self._c("api_keys").update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now()}}
        )
        return result.modified_count == 1

    # -- signing keys -------------------------------------------------------------------------

    async def add_signing_key(
        self, *, kid: str, secret: str, algorithm: str = "HS256"
    ) -> SigningKey:
        keys = self._c("signing_keys")
        key = SigningKey(kid=kid, secret=secret, algorithm=algorithm, created_at=now(), active=True)
        # Checked first: without a transaction, a failed insert after the deactivation
        # below would leave the ring with no active key.
        if await keys.count_documents({"_id": kid}, limit=1):
            raise StoreConflictError("a signing key with this kid already exists")
        body = {
            "_id": kid,
            "secret": secret,
            "algorithm": algorithm,
            "created_at": key.created_at,
            "active": True,
            "retired_at": None,
        }

        async def rotate(session: Session | None) -> None:
            await keys.update_many({"active": True}, {"$set": {"active": False}}, session=session)
            await keys.insert_one(dict(body), session=session)

        # The partial unique index on ``active`` is the real guard; a concurrent
        # rotation that slipped in between the two writes makes the insert fail, and
        # trying again deactivates that key too (the later rotation wins).
        for _ in range(5):
            try:
                await self._atomic(rotate)
            except DuplicateKeyError as exc:
                if not _dup_on(exc, "active"):
                    raise StoreConflictError("a signing key with this kid already exists") from exc
                continue
            return key
        raise StoreConflictError("signing keys are being rotated concurrently; try again")

    async def list_signing_keys(self) -> list[SigningKey]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        return [
            docs.signing_key_from(d) for d in await self._all(self._c("signing_keys"), {}, sort)
        ]

    async def retire_signing_key(self, kid: str) -> bool:
        keys = self._c("signing_keys")
        d = await keys.find_one({"_id": kid})
        if d is None or d.get("retired_at") is not None:
            return False
        if d.get("active"):
            raise StoreConflictError("the active signing key cannot be retired; rotate first")
        result = await keys.update_one(
            {"_id": kid, "active": False, "retired_at": None}, {"$set": {"retired_at": now()}}
        )
        return result.modified_count == 1

    # -- refresh tokens, revoked jtis, nonces ---------------------------------------------

    async def save_refresh_token(
        self, *, jti: str, family_id: str, user_id: str, expires_at: datetime
    ) -> RefreshToken:
        await self._user_exists(user_id)
        token = RefreshToken(
            jti=jti,
            family_id=family_id,
            user_id=user_id,
            expires_at=utc(expires_at),
            created_at=now(),
        )
        try:
            await self._c("refresh_tokens").insert_one(
                {
                    "_id": jti,
                    "family_id": family_id,
                    "user_id": user_id,
                    "expires_at": token.expires_at,
                    "created_at": token.created_at,
                    "used_at": None,
                    "revoked_at": None,
                }
            )
        except DuplicateKeyError as exc:
            raise StoreConflictError("a refresh token with this jti already exists") from exc
        return token

    async def get_refresh_token(self, jti: str) -> RefreshToken | None:
        d = await self._c("refresh_tokens").find_one({"_id": jti})
        return None if d is None else docs.refresh_token_from(d)

    async def mark_refresh_token_used(self, jti: str) -> bool:
        # The filter is the compare-and-set: the server applies it atomically.
        d = await self._c("refresh_tokens").find_one_and_update(
            {"_id": jti, "used_at": None, "revoked_at": None}, {"$set": {"used_at": now()}}
        )
        return d is not None

    async def _revoke_tokens(self, query: Mapping[str, Any]) -> int:
        result = await self._c("refresh_tokens").update_many(
            {**query, "revoked_at": None}, {"$set": {"revoked_at": now()}}
        )
        return result.modified_count

    async def revoke_refresh_family(self, family_id: str) -> int:
        return await self._revoke_tokens({"family_id": family_id})

    async def revoke_user_refresh_tokens(self, user_id: str) -> int:
        return await self._revoke_tokens({"user_id": user_id})

    async def revoke_jti(self, jti: str, expires_at: datetime) -> None:
        await self._c("revoked_jtis").update_one(
            {"_id": jti}, {"$max": {"expires_at": utc(expires_at)}}, upsert=True
        )

    async def is_jti_revoked(self, jti: str) -> bool:
        return await self._c("revoked_jtis").count_documents({"_id": jti}, limit=1) > 0

    async def remember_nonce(self, key: str, expires_at: datetime) -> bool:
        nonces = self._c("nonces")
        try:
            await nonces.insert_one({"_id": key, "expires_at": utc(expires_at)})
        except DuplicateKeyError:
            # Known: a replay, unless it expired and the TTL monitor has not run yet.
            taken = await nonces.find_one_and_update(
                {"_id": key, "expires_at": {"$lte": now()}},
                {"$set": {"expires_at": utc(expires_at)}},
            )
            return taken is not None
        return True

    # -- audit --------------------------------------------------------------------------------

    async def append_audit(
        self,
        actor: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> AuditEntry:
        stamp = now() if ts is None else utc(ts)
        body = dict(details or {})
        result = await self._c("audit").insert_one(
            {"ts": stamp, "actor": actor, "action": action, "target": target, "details": body}
        )
        return AuditEntry(
            id=str(result.inserted_id),
            ts=stamp,
            actor=actor,
            action=action,
            target=target,
            details=body,
        )

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
        query: dict[str, Any] = {
            k: v
            for k, v in (("actor", actor), ("action", action), ("target", target))
            if v is not None
        }
        if bounds := docs.range_query(start, end):
            query["ts"] = bounds
        sort = [("ts", DESCENDING), ("_id", DESCENDING)]
        rows, total = await self._page(self._c("audit"), query, sort, offset, limit)
        return [docs.audit_from(d) for d in rows], total

    # -- trading documents --------------------------------------------------------------------

    async def save_trading(
        self,
        *,
        orders: Sequence[Doc] = (),
        deals: Sequence[Doc] = (),
        positions: Sequence[Doc] = (),
        accounts: Sequence[Doc] = (),
    ) -> None:
        writes = docs.trading_writes(orders, deals, positions, accounts)

        async def upsert_all(session: Session | None) -> None:
            for name, key, body in writes:
                await self._c(name).replace_one({"_id": key}, body, upsert=True, session=session)

        try:
            await self._atomic(upsert_all)
        except DuplicateKeyError as exc:
            raise StoreConflictError("clientOrderId is already used by another order") from exc

    async def _get_doc(self, name: str, query: Mapping[str, Any]) -> Doc | None:
        d = await self._c(name).find_one(query)
        return None if d is None else docs.body_of(d)

    async def get_order(self, user_id: str, order_id: str) -> Doc | None:
        return await self._get_doc("orders", {"_id": order_id, "user_id": user_id})

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> Doc | None:
        return await self._get_doc(
            "orders", {"user_id": user_id, "client_order_id": client_order_id}
        )

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
        query: dict[str, Any] = {"user_id": user_id}
        if status is not None:
            query["status"] = status
        if symbol is not None:
            query["symbol"] = symbol
        if bounds := docs.range_query(start, end):
            query["created_at"] = bounds
        sort = [("created_at", DESCENDING), ("_id", DESCENDING)]
        rows, total = await self._page(self._c("orders"), query, sort, offset, limit)
        return [docs.body_of(d) for d in rows], total

    async def list_pending_orders(
        self, statuses: Sequence[str] = PENDING_ORDER_STATUSES
    ) -> list[Doc]:
        if not statuses:
            return []
        query = {"status": {"$in": list(statuses)}}
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        return [docs.body_of(d) for d in await self._all(self._c("orders"), query, sort)]

    async def get_position(self, user_id: str, ticket: int) -> Doc | None:
        require_ticket({"ticket": ticket}, "position")
        return await self._get_doc("positions", {"_id": ticket, "user_id": user_id})

    async def list_positions(self, user_id: str, status: str | None = None) -> list[Doc]:
        query: dict[str, Any] = {"user_id": user_id}
        if status is not None:
            query["status"] = status
        rows = await self._all(self._c("positions"), query, [("_id", ASCENDING)])
        return [docs.body_of(d) for d in rows]

    async def list_open_positions(self) -> list[Doc]:
        rows = await self._all(self._c("positions"), {"status": "open"}, [("_id", ASCENDING)])
        return [docs.body_of(d) for d in rows]

    async def list_deals(
        self,
        user_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
        symbol: str | None = None,
    ) -> tuple[list[Doc], int]:
        query: dict[str, Any] = {"user_id": user_id}
        if symbol is not None:
            query["symbol"] = symbol
        if bounds := docs.range_query(start, end):
            query["time"] = bounds
        sort = [("time", DESCENDING), ("_id", DESCENDING)]
        rows, total = await self._page(self._c("deals"), query, sort, offset, limit)
        return [docs.body_of(d) for d in rows], total

    async def get_account(self, user_id: str) -> Doc | None:
        return await self._get_doc("accounts", {"_id": user_id})

    async def list_accounts(self) -> list[Doc]:
        return [
            docs.body_of(d) for d in await self._all(self._c("accounts"), {}, [("_id", ASCENDING)])
        ]

    async def next_sequence(self, name: str) -> int:
        # Two first-ever calls can both try the upsert's insert; the loser retries
        # and then finds the document.
        for _ in range(3):
            try:
                d = await self._c("sequences").find_one_and_update(
                    {"_id": name},
                    {"$inc": {"value": 1}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue
            if d is not None:
                return int(d["value"])
        raise StoreError(f"could not advance sequence {name!r}")

    # -- alerts, strategies, signals -------------------------------------------------------

    async def _save_owned(self, name: str, noun: str, user_id: str, doc_id: str, doc: Doc) -> None:
        # The owner is part of the filter: another user's id makes the upsert try an
        # insert, which the _id index refuses, so nobody takes over someone's record.
        try:
            await self._c(name).update_one(
                {"_id": doc_id, "user_id": user_id},
                {"$set": {"doc": doc}, "$setOnInsert": {"created_at": now()}},
                upsert=True,
            )
        except DuplicateKeyError as exc:
            raise StoreConflictError(f"this {noun} id belongs to another user") from exc

    async def _delete_owned(self, name: str, user_id: str, doc_id: str) -> bool:
        result = await self._c(name).delete_one({"_id": doc_id, "user_id": user_id})
        return result.deleted_count == 1

    async def _list_owned(self, name: str, user_id: str) -> list[Doc]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        return [docs.body_of(d) for d in await self._all(self._c(name), {"user_id": user_id}, sort)]

    async def save_alert(self, user_id: str, alert_id: str, alert: Doc) -> None:
        await self._save_owned("alerts", "alert", user_id, alert_id, alert)

    async def get_alert(self, user_id: str, alert_id: str) -> Doc | None:
        return await self._get_doc("alerts", {"_id": alert_id, "user_id": user_id})

    async def list_alerts(self, user_id: str) -> list[Doc]:
        return await self._list_owned("alerts", user_id)

    async def list_all_alerts(self) -> list[OwnedDoc]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows = await self._all(self._c("alerts"), {}, sort)
        return [OwnedDoc(d["_id"], d["user_id"], docs.body_of(d)) for d in rows]

    async def delete_alert(self, user_id: str, alert_id: str) -> bool:
        return await self._delete_owned("alerts", user_id, alert_id)

    async def save_strategy(self, user_id: str, strategy_id: str, doc: Doc) -> None:
        await self._save_owned("strategies", "strategy", user_id, strategy_id, doc)

    async def get_strategy(self, user_id: str, strategy_id: str) -> Doc | None:
        return await self._get_doc("strategies", {"_id": strategy_id, "user_id": user_id})

    async def list_strategies(self, user_id: str) -> list[Doc]:
        return await self._list_owned("strategies", user_id)

    async def delete_strategy(self, user_id: str, strategy_id: str) -> bool:
        return await self._delete_owned("strategies", user_id, strategy_id)

    async def save_signal(self, signal_id: str, user_id: str | None, doc: Doc) -> None:
        # A store-side counter orders signals by first save, like SQLite's rowid.
        seq = await self.next_sequence(_SIGNAL_SEQUENCE)
        await self._c("signals").update_one(
            {"_id": signal_id},
            {"$set": {"user_id": user_id, "doc": doc}, "$setOnInsert": {"seq": seq}},
            upsert=True,
        )

    async def get_signal(self, signal_id: str) -> OwnedDoc | None:
        d = await self._c("signals").find_one({"_id": signal_id})
        return None if d is None else OwnedDoc(d["_id"], d.get("user_id"), docs.body_of(d))

    async def list_signals(
        self, user_id: str | None, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[Doc], int]:
        owners: list[str | None] = [None] if user_id is None else [None, user_id]
        query = {"user_id": {"$in": owners}}
        rows, total = await self._page(
            self._c("signals"), query, [("seq", DESCENDING)], offset, limit
        )
        return [docs.body_of(d) for d in rows], total

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
        await self.upsert_candles(
            [Candle(symbol, interval, open_time, open, high, low, close, volume)]
        )

    async def upsert_candles(self, candles: Sequence[Candle]) -> None:
        coll = self._c("candles")

        async def upsert(c: Candle) -> None:
            key = {"symbol": c.symbol, "interval": c.interval, "open_time": utc(c.open_time)}
            bar = {"open": c.open, "high": c.high, "low": c.low, "close": c.close}
            for attempt in range(2):  # two writers inserting one new bar: retry as update
                try:
                    await coll.update_one(key, {"$set": {**bar, "volume": c.volume}}, upsert=True)
                    return
                except DuplicateKeyError:
                    if attempt:
                        raise

        # Single-document upserts kept in flight together instead of bulk_write,
        # which mongomock cannot run; on a real server the cost is similar.
        for i in range(0, len(candles), _CONCURRENT_WRITES):
            await asyncio.gather(*(upsert(c) for c in candles[i : i + _CONCURRENT_WRITES]))

    async def list_candles(
        self,
        symbol: str,
        interval: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        check_paging(0, limit)
        if limit == 0:
            return []
        query: dict[str, Any] = {"symbol": symbol, "interval": interval}
        if bounds := docs.range_query(start, end):
            query["open_time"] = bounds
        cursor = self._c("candles").find(query, sort=[("open_time", DESCENDING)], limit=limit)
        return [docs.candle_from(d) for d in reversed(await cursor.to_list(None))]

    # -- channel history ------------------------------------------------------------------

    async def append_history(
        self, stream: str, offset: int, epoch: str, payload: Mapping[str, Any]
    ) -> None:
        history = self._c("history")
        await history.delete_many(
            {
                "stream": stream,
                "$or": [{"offset": {"$lte": offset - self._retention}}, {"epoch": {"$ne": epoch}}],
            }
        )
        await history.update_one(
            {"stream": stream, "offset": offset},
            {"$set": {"epoch": epoch, "payload": dict(payload)}},
            upsert=True,
        )

    async def read_history(
        self, stream: str, after_offset: int, limit: int = 1000
    ) -> list[HistoryEntry]:
        check_paging(0, limit)
        if limit == 0:
            return []
        cursor = self._c("history").find(
            {"stream": stream, "offset": {"$gt": after_offset}},
            sort=[("offset", ASCENDING)],
            limit=limit,
        )
        return [docs.history_from(d) for d in await cursor.to_list(None)]

    async def last_history(self, stream: str) -> HistoryEntry | None:
        d = await self._c("history").find_one({"stream": stream}, sort=[("offset", DESCENDING)])
        return None if d is None else docs.history_from(d)
