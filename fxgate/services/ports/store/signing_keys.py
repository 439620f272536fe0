"""The signing-key area: the JWT key ring every daemon and the CLI share."""

from __future__ import annotations

from typing import Protocol

from fxgate.services.ports.store.records import SigningKey


class SigningKeyStore(Protocol):
    async def add(self, *, kid: str, secret: str, algorithm: str = "HS256") -> SigningKey:
        """Add a key and make it the only active one, atomically.

        The previously active key stays (inactive, not retired) to verify the tokens
        it signed. Raises StoreConflictError when ``kid`` exists.
        """
        ...

    async def all(self) -> list[SigningKey]:
        """The whole ring, oldest first; daemons re-read it to pick up rotations."""
        ...

    async def retire(self, kid: str) -> bool:
        """Stop accepting tokens signed with ``kid``.

        False when there is no such key or it is retired already. Raises
        StoreConflictError for the active key: retiring it would leave nothing to
        sign with, so rotate first.
        """
        ...
