"""The users area on MongoDB: the ``users`` collection, ``email_key`` unique."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import User, email_key
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, dup_on, translating_errors
from fxgate.store.rules import new_user, now


@translating_errors
class MongoUsers:
    """``UserStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def create(
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
            await self._m.c("users").insert_one(docs.user_document(user))
        except DuplicateKeyError as exc:
            if dup_on(exc, "email_key"):
                raise StoreConflictError("a user with this email already exists") from exc
            raise StoreConflictError("a user with this id already exists") from exc
        return user

    async def get(self, user_id: str) -> User | None:
        d = await self._m.c("users").find_one({"_id": user_id})
        return None if d is None else docs.user_from(d)

    async def get_by_email(self, email: str) -> User | None:
        d = await self._m.c("users").find_one({"email_key": email_key(email)})
        return None if d is None else docs.user_from(d)

    async def page(self, *, offset: int = 0, limit: int = 50) -> tuple[list[User], int]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows, total = await self._m.page(self._m.c("users"), {}, sort, offset, limit)
        return [docs.user_from(d) for d in rows], total

    async def changed_since(self, since: datetime) -> list[User]:
        query = {"updated_at": {"$gte": since}}
        cursor = self._m.c("users").find(query).sort("updated_at", ASCENDING)
        return [docs.user_from(d) async for d in cursor]

    async def update(
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
        d = await self._m.c("users").find_one_and_update(
            {"_id": user_id}, {"$set": sets}, return_document=ReturnDocument.AFTER
        )
        return None if d is None else docs.user_from(d)
