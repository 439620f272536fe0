"""Roles, and what each one may do: the one place that answers "may this user ...?"."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    TRADER = "trader"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        """Admins may do what traders may; traders what viewers may."""
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 0, Role.TRADER: 1, Role.ADMIN: 2}


class Scope(enum.StrEnum):
    """A single right a token may carry on top of its role (the JWT ``scope`` claim).

    A backend service that publishes events needs that one right, not an admin's
    power over prices, users and keys: it gets a viewer token with ``publish``.
    """

    PUBLISH = "publish"
