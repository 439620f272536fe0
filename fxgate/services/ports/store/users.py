"""The users area: who may log in (the auth services, the admin CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from fxgate.services.ports.store.records import User


class UserStore(Protocol):
    """Users by id and by email (compared case-insensitively, see ``email_key``)."""

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
        """Create a user; ``user_id`` defaults to a fresh random id.

        Raises StoreConflictError when the email (compared case-insensitively) or the
        id is taken.
        """
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None:
        """Look a user up by email, ignoring case (how people type at a login form)."""
        ...

    async def page(self, *, offset: int = 0, limit: int = 50) -> tuple[list[User], int]:
        """Users in creation order, for the admin CLI and API."""
        ...

    async def changed_since(self, since: datetime) -> list[User]:
        """Users created or updated at or after ``since`` (their ``updated_at``): how a
        daemon notices, in one cheap read, a user disabled by the CLI elsewhere."""
        ...

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
        """Change the given fields (None leaves a field alone) and bump ``updated_at``.

        Returns the updated user, or None when there is no such user. Disabling a
        user does not revoke their tokens: the auth service does that explicitly.
        """
        ...
