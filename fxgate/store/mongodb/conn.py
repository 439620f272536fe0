"""The MongoDB connection every area shares: collections, transactions, paging, errors.

One :class:`Mongo` per store; :class:`~fxgate.store.mongodb.MongoStore` opens and
closes it, and each area class holds it to reach its collections. ``translating_errors``
turns "cannot reach the server" into ``StoreUnavailableError`` in every public method of
an area class, so the web layer answers 503.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar, cast

from motor.motor_asyncio import (
    AsyncIOMotorClient,
    AsyncIOMotorClientSession,
    AsyncIOMotorCollection,
    AsyncIOMotorDatabase,
)
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

from fxgate.services.ports.store.errors import (
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)
from fxgate.services.ports.store.records import Doc
from fxgate.store.mongodb.docs import MongoDoc, Sort, body_of
from fxgate.store.rules import check_paging, now

log = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C", bound=type)
Collection = AsyncIOMotorCollection[MongoDoc]
Session = AsyncIOMotorClientSession

#: Server error codes meaning "this deployment does not do transactions".
_NO_TRANSACTIONS = {20, 263}


def translating_errors(cls: C) -> C:
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


def dup_on(exc: DuplicateKeyError, field: str) -> bool:
    """Whether a duplicate-key error came from the index on ``field`` (else ``_id``)."""
    pattern = (exc.details or {}).get("keyPattern") or {}
    return field in pattern or field in str(exc)


class Mongo:
    """The client and database once open, and whether transactions work there."""

    def __init__(self) -> None:
        self.client: AsyncIOMotorClient[MongoDoc] | None = None
        self.db: AsyncIOMotorDatabase[MongoDoc] | None = None
        self.transactions = False

    def c(self, name: str) -> Collection:
        if self.db is None:
            raise StoreError("the MongoDB store is not open")
        return self.db[name]

    async def atomic(self, work: Callable[[Session | None], Coroutine[Any, Any, T]]) -> T:
        """Run ``work`` in a transaction where the deployment has them, else plainly.

        ``work`` must be idempotent: the driver retries it on transient errors.
        """
        if self.transactions and self.client is not None:
            try:
                async with await self.client.start_session() as session:
                    result: Any = await session.with_transaction(work)
                    return cast(T, result)
            except (OperationFailure, NotImplementedError) as exc:
                if isinstance(exc, OperationFailure) and exc.code not in _NO_TRANSACTIONS:
                    raise
                log.warning("no transactions here after all (%s); writing in order", exc)
                self.transactions = False
        return await work(None)

    async def page(
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

    async def all(self, coll: Collection, query: Mapping[str, Any], sort: Sort) -> list[MongoDoc]:
        return await coll.find(query, sort=sort).to_list(None)

    async def get_body(self, name: str, query: Mapping[str, Any]) -> Doc | None:
        d = await self.c(name).find_one(query)
        return None if d is None else body_of(d)

    async def user_exists(self, user_id: str) -> None:
        """The foreign-key check SQLite does by itself, so both backends agree."""
        if await self.c("users").count_documents({"_id": user_id}, limit=1) == 0:
            raise StoreConflictError("the referenced user does not exist")

    async def save_owned(
        self,
        name: str,
        noun: str,
        user_id: str,
        doc_id: str,
        doc: Doc,
        session: Session | None = None,
    ) -> None:
        """Upsert a document owned by one user (an alert, a strategy)."""
        # The owner is part of the filter: another user's id makes the upsert try an
        # insert, which the _id index refuses, so nobody takes over someone's record.
        try:
            await self.c(name).update_one(
                {"_id": doc_id, "user_id": user_id},
                {"$set": {"doc": doc}, "$setOnInsert": {"created_at": now()}},
                upsert=True,
                session=session,
            )
        except DuplicateKeyError as exc:
            raise StoreConflictError(f"this {noun} id belongs to another user") from exc
