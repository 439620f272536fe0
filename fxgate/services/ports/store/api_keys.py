"""The API-key area: keys for programs that sign their requests, and the nonces of
those signatures.

Nonces live here rather than with the login sessions because they exist only to stop a
replayed API-key signature (seed 004): the API-key service is their one user, and a
nonce is named by its key (``<api_key>:<nonce>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from fxgate.services.ports.store.records import ApiKey


class ApiKeyStore(Protocol):
    async def create(self, *, user_id: str, key_id: str, secret: str, name: str = "") -> ApiKey:
        """Store a key the auth service generated.

        Raises StoreConflictError when ``key_id`` exists or ``user_id`` does not.
        """
        ...

    async def get(self, key_id: str) -> ApiKey | None:
        """Revoked keys are returned too (with ``revoked_at``): the caller refuses them."""
        ...

    async def of_user(self, user_id: str) -> list[ApiKey]:
        """A user's keys, oldest first, revoked ones included."""
        ...

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when it does not exist or was revoked already."""
        ...

    async def remember_nonce(self, key: str, expires_at: datetime) -> bool:
        """Record an API-signature nonce; False when it is already known and unexpired.

        This is the replay check of seed 004's signed requests: atomic, so two
        concurrent requests with one nonce cannot both pass. Expired nonces go with
        ``Store.purge_expired``.
        """
        ...
