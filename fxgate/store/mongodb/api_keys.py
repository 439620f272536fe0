"""The API-key area on MongoDB: ``api_keys``, and the ``nonces`` of their signatures."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import ApiKey
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, translating_errors
from fxgate.store.rules import now, utc


@translating_errors
class MongoApiKeys:
    """``ApiKeyStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def create(self, *, user_id: str, key_id: str, secret: str, name: str = "") -> ApiKey:
        await self._m.user_exists(user_id)
        key = ApiKey(key_id=key_id, user_id=user_id, secret=secret, name=name, created_at=now())
        try:
            await self._m.c("api_keys").insert_one(
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

    async def get(self, key_id: str) -> ApiKey | None:
        d = await self._m.c("api_keys").find_one({"_id": key_id})
        return None if d is None else docs.api_key_from(d)

    async def of_user(self, user_id: str) -> list[ApiKey]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows = await self._m.all(self._m.c("api_keys"), {"user_id": user_id}, sort)
        return [docs.api_key_from(d) for d in rows]

    async def revoke(self, key_id: str) -> bool:
        result = await self._m.c("api_keys").update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now()}}
        )
        return result.modified_count == 1

    async def remember_nonce(self, key: str, expires_at: datetime) -> bool:
        nonces = self._m.c("nonces")
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
