"""The trading area on MongoDB: orders, positions, deals, accounts, sequences, alerts.

A stored record keeps its codec document under ``doc`` and the indexed fields beside
it (``docs.trading_writes``); reads decode the document back into the domain type.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from fxgate.domain.trading import Account, Deal, Order, Position
from fxgate.services.ports.store.errors import StoreConflictError, StoreError
from fxgate.services.ports.store.records import Doc, OwnedDoc
from fxgate.services.ports.store.trading import PENDING_ORDER_STATUSES
from fxgate.store.codecs import decode
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, Session, translating_errors
from fxgate.store.mongodb.fencing import check_fence


@translating_errors
class MongoTrading:
    """``TradingStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def save(
        self,
        *,
        orders: Sequence[Order] = (),
        deals: Sequence[Deal] = (),
        positions: Sequence[Position] = (),
        accounts: Sequence[Account] = (),
        fence: int | None = None,
    ) -> None:
        writes = docs.trading_writes(orders, deals, positions, accounts)

        async def upsert_all(session: Session | None) -> None:
            await check_fence(self._m, fence, session)
            for name, key, body in writes:
                await self._m.c(name).replace_one({"_id": key}, body, upsert=True, session=session)

        try:
            await self._m.atomic(upsert_all)
        except DuplicateKeyError as exc:
            raise StoreConflictError("clientOrderId is already used by another order") from exc

    async def get_order(self, user_id: str, order_id: str) -> Order | None:
        body = await self._m.get_body("orders", {"_id": order_id, "user_id": user_id})
        return None if body is None else decode(Order, body)

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> Order | None:
        query = {"user_id": user_id, "client_order_id": client_order_id}
        body = await self._m.get_body("orders", query)
        return None if body is None else decode(Order, body)

    async def list_orders(
        self,
        user_id: str,
        status: str | None = None,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Order], int]:
        query: dict[str, Any] = {"user_id": user_id}
        if status is not None:
            query["status"] = status
        if symbol is not None:
            query["symbol"] = symbol
        if bounds := docs.range_query(start, end):
            query["created_at"] = bounds
        sort = [("created_at", DESCENDING), ("_id", DESCENDING)]
        rows, total = await self._m.page(self._m.c("orders"), query, sort, offset, limit)
        return [decode(Order, docs.body_of(d)) for d in rows], total

    async def list_pending_orders(
        self, statuses: Sequence[str] = PENDING_ORDER_STATUSES
    ) -> list[Order]:
        if not statuses:
            return []
        query = {"status": {"$in": list(statuses)}}
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows = await self._m.all(self._m.c("orders"), query, sort)
        return [decode(Order, docs.body_of(d)) for d in rows]

    async def list_positions(self, user_id: str, status: str | None = None) -> list[Position]:
        query: dict[str, Any] = {"user_id": user_id}
        if status is not None:
            query["status"] = status
        rows = await self._m.all(self._m.c("positions"), query, [("_id", ASCENDING)])
        return [decode(Position, docs.body_of(d)) for d in rows]

    async def list_open_positions(self) -> list[Position]:
        rows = await self._m.all(self._m.c("positions"), {"status": "open"}, [("_id", ASCENDING)])
        return [decode(Position, docs.body_of(d)) for d in rows]

    async def list_deals(
        self,
        user_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
        symbol: str | None = None,
    ) -> tuple[list[Deal], int]:
        query: dict[str, Any] = {"user_id": user_id}
        if symbol is not None:
            query["symbol"] = symbol
        if bounds := docs.range_query(start, end):
            query["time"] = bounds
        sort = [("time", DESCENDING), ("_id", DESCENDING)]
        rows, total = await self._m.page(self._m.c("deals"), query, sort, offset, limit)
        return [decode(Deal, docs.body_of(d)) for d in rows], total

    async def list_accounts(self) -> list[Account]:
        rows = await self._m.all(self._m.c("accounts"), {}, [("_id", ASCENDING)])
        return [decode(Account, docs.body_of(d)) for d in rows]

    async def next_sequence(self, name: str, *, fence: int | None = None) -> int:
        async def advance(session: Session | None) -> Any:
            await check_fence(self._m, fence, session)
            return await self._m.c("sequences").find_one_and_update(
                {"_id": name},
                {"$inc": {"value": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
                session=session,
            )

        # Two first-ever calls can both try the upsert's insert; the loser retries
        # and then finds the document.
        for _ in range(3):
            try:
                d = await (advance(None) if fence is None else self._m.atomic(advance))
            except DuplicateKeyError:
                continue
            if d is not None:
                return int(d["value"])
        raise StoreError(f"could not advance sequence {name!r}")

    async def save_alert(
        self, user_id: str, alert_id: str, alert: Doc, *, fence: int | None = None
    ) -> None:
        async def upsert(session: Session | None) -> None:
            await check_fence(self._m, fence, session)
            await self._m.save_owned("alerts", "alert", user_id, alert_id, alert, session)

        await (upsert(None) if fence is None else self._m.atomic(upsert))

    async def list_all_alerts(self) -> list[OwnedDoc]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows = await self._m.all(self._m.c("alerts"), {}, sort)
        return [OwnedDoc(d["_id"], d["user_id"], docs.body_of(d)) for d in rows]
