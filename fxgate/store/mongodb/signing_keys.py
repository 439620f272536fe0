"""The signing-key area on MongoDB: ``signing_keys``, one active by a partial unique index."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import SigningKey
from fxgate.store.mongodb import docs
from fxgate.store.mongodb.conn import Mongo, Session, dup_on, translating_errors
from fxgate.store.rules import now


@translating_errors
class MongoSigningKeys:
    """``SigningKeyStore`` on MongoDB."""

    def __init__(self, mongo: Mongo) -> None:
        self._m = mongo

    async def add(self, *, kid: str, secret: str, algorithm: str = "HS256") -> SigningKey:
        keys = self._m.c("signing_keys")
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
                await self._m.atomic(rotate)
            except DuplicateKeyError as exc:
                if not dup_on(exc, "active"):
                    raise StoreConflictError("a signing key with this kid already exists") from exc
                continue
            return key
        raise StoreConflictError("signing keys are being rotated concurrently; try again")

    async def all(self) -> list[SigningKey]:
        sort = [("created_at", ASCENDING), ("_id", ASCENDING)]
        rows = await self._m.all(self._m.c("signing_keys"), {}, sort)
        return [docs.signing_key_from(d) for d in rows]

    async def retire(self, kid: str) -> bool:
        keys = self._m.c("signing_keys")
        d = await keys.find_one({"_id": kid})
        if d is None or d.get("retired_at") is not None:
            return False
        if d.get("active"):
            raise StoreConflictError("the active signing key cannot be retired; rotate first")
        result = await keys.update_one(
            {"_id": kid, "active": False, "retired_at": None}, {"$set": {"retired_at": now()}}
        )
        return result.modified_count == 1
