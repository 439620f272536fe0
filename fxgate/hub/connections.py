"""Live connections of every endpoint, by user: what ``GET /auth/sessions`` lists and
``DELETE /auth/sessions/:id`` closes.

Each socket handler (any dialect) registers its connection once it knows who it is
(after authentication) and drops it when it closes; the registry holds no sockets, only
a ``close`` callback, so it works the same for every transport. Lookups are by user, so
a user can only ever see and close their own.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fxgate.domain.errors import Disconnect
from fxgate.services.auth.tokens import Claims

_ids = itertools.count(1)


@dataclass(eq=False, slots=True)
class LiveConnection:
    """One authenticated socket."""

    endpoint: str
    claims: Claims
    close: Callable[[Disconnect], None]
    remote: str = ""
    #: The API key a socket logged in with (``/ws/trading``): it has no token, so it is
    #: listed as a session of its own, ``key_<api key id>``.
    api_key: str | None = None
    connected_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: f"conn_{next(_ids)}")

    @property
    def user_id(self) -> str:
        return self.claims.sub


class ConnectionRegistry:
    def __init__(self) -> None:
        self._by_user: dict[str, dict[LiveConnection, None]] = {}

    def add(self, conn: LiveConnection) -> None:
        self._by_user.setdefault(conn.user_id, {})[conn] = None

    def discard(self, conn: LiveConnection) -> None:
        conns = self._by_user.get(conn.user_id)
        if conns is not None:
            conns.pop(conn, None)
            if not conns:
                del self._by_user[conn.user_id]

    def of_user(self, user_id: str) -> list[LiveConnection]:
        return list(self._by_user.get(user_id, ()))

    def __len__(self) -> int:
        return sum(len(c) for c in self._by_user.values())
