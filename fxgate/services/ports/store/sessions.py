"""The sessions area: what a login leaves behind, refresh tokens and revoked access tokens.

Revoked access-token ids (``jti``) sit with the refresh tokens because both end a login
session: logout revokes the refresh family and the access token's jti together, and the
token service checks the jti on every request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from fxgate.services.ports.store.records import RefreshToken


class SessionStore(Protocol):
    async def save_refresh_token(
        self, *, jti: str, family_id: str, user_id: str, expires_at: datetime
    ) -> RefreshToken:
        """Record a newly issued refresh token. Raises StoreConflictError on a known jti."""
        ...

    async def get_refresh_token(self, jti: str) -> RefreshToken | None: ...

    async def live_refresh_tokens(self, user_id: str) -> list[RefreshToken]:
        """The user's refresh tokens that can still be spent (not used, not revoked,
        not expired): one per live login session, newest first."""
        ...

    async def mark_refresh_token_used(self, jti: str) -> bool:
        """Spend a refresh token, as one atomic compare-and-set.

        True for exactly one caller. False when the token is unknown, revoked or was
        used already: the last case is reuse, and the auth service then revokes the
        family. Expiry is not checked here; the caller has the token and the clock.
        """
        ...

    async def revoke_refresh_family(self, family_id: str) -> int:
        """Revoke every not yet revoked token of a family; returns how many."""
        ...

    async def revoke_user_refresh_tokens(self, user_id: str) -> int:
        """Revoke all of a user's refresh tokens (password change, disabling)."""
        ...

    async def revoke_jti(self, jti: str, expires_at: datetime) -> None:
        """Deny an access token until it expires by itself (logout)."""
        ...

    async def is_jti_revoked(self, jti: str) -> bool:
        """True while the revocation is kept, which is at least until ``expires_at``."""
        ...
