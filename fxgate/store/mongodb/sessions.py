"""The sessions area on MongoDB: ``refresh_tokens`` and ``revoked_jtis`` (TTL-indexed)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import RefreshToken
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, translating_errors
from fxgate.store.rules import now, utc


@translating_errors
class MongoSessions:
    """``SessionStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def save_refresh_token(
        self, *, jti: str, family_id: str, user_id: str, expires_at: datetime
    ) -> RefreshToken:
        await self._m.user_exists(user_id)
        token = RefreshToken(
            jti=jti,
            family_id=family_id,
            user_id=user_id,
            expires_at=utc(expires_at),
            created_at=now(),
        )
        try:
            await self._m.c("refresh_tokens").insert_one(
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
        d = await self._m.c("refresh_tokens").find_one({"_id": jti})
        return None if d is None else docs.refresh_token_from(d)

    async def live_refresh_tokens(self, user_id: str) -> list[RefreshToken]:
        cursor = self._m.c("refresh_tokens").find(
            {"user_id": user_id, "used_at": None, "revoked_at": None, "expires_at": {"$gt": now()}}
        )
        found = [docs.refresh_token_from(d) async for d in cursor]
        return sorted(found, key=lambda t: t.created_at, reverse=True)

    async def mark_refresh_token_used(self, jti: str) -> bool:
        # The filter is the compare-and-set: the server applies it atomically.
        d = await self._m.c("refresh_tokens").find_one_and_update(
            {"_id": jti, "used_at": None, "revoked_at": None}, {"$set": {"used_at": now()}}
        )
        return d is not None

    async def _revoke_tokens(self, query: Mapping[str, Any]) -> int:
        result = await self._m.c("refresh_tokens").update_many(
            {**query, "revoked_at": None}, {"$set": {"revoked_at": now()}}
        )
        return result.modified_count

    async def revoke_refresh_family(self, family_id: str) -> int:
        return await self._revoke_tokens({"family_id": family_id})

    async def revoke_user_refresh_tokens(self, user_id: str) -> int:
        return await self._revoke_tokens({"user_id": user_id})

    async def revoke_jti(self, jti: str, expires_at: datetime) -> None:
        await self._m.c("revoked_jtis").update_one(
            {"_id": jti}, {"$max": {"expires_at": utc(expires_at)}}, upsert=True
        )

    async def is_jti_revoked(self, jti: str) -> bool:
        return await self._m.c("revoked_jtis").count_documents({"_id": jti}, limit=1) > 0
