"""The trading area: the broker's records (orders, positions, deals, accounts), its
ticket counters, and the risk alerts the trading service raises.

**Fencing.** In a cluster the writes come from the leader only, and each carries its
fencing token (``fence``, drawn from Redis when it was elected, larger for every new
leader). The store keeps the highest token it has seen and refuses, atomically with the
write, one whose token is lower: :class:`~fxgate.services.ports.store.errors.
StaleFenceError`, and nothing of it is written. So an old leader that still believes
it leads (its lease lost in a Redis failover, or a pause its clock did not notice)
cannot write once its successor has. A single node passes no token and is not fenced.
SQLite checks the token in the write's own transaction; MongoDB raises it on a fence
document with a conditional update, inside the write's transaction where the server
has transactions, and just before the write where it has not (a standalone server:
the old leader's one batch already past the check can still land).

Records go in and come out as the domain's own frozen types; the store encodes them
(``fxgate.store.codecs``: Decimals as strings, enums as their values) and indexes a few
of their fields, so a record reads back equal to what was saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from fxgate.domain.trading import Account, Deal, Order, Position
from fxgate.services.ports.store.records import Doc, OwnedDoc

#: What ``list_pending_orders`` restores by default: orders still working at the broker.
PENDING_ORDER_STATUSES: tuple[str, ...] = ("pending",)


class TradingStore(Protocol):
    async def save(
        self,
        *,
        orders: Sequence[Order] = (),
        deals: Sequence[Deal] = (),
        positions: Sequence[Position] = (),
        accounts: Sequence[Account] = (),
        fence: int | None = None,
    ) -> None:
        """Upsert a batch of broker records, all or nothing where the backend allows.

        Keys: orders by ``id`` (``client_order_id`` unique per user when not null),
        positions and deals by integer ``ticket``, accounts by ``user_id``. A record
        with an empty key or a ticket that is not an int raises ValueError and nothing
        is written; a taken client order id raises StoreConflictError.

        SQLite writes the batch in one transaction: a failure writes nothing.
        MongoDB uses a multi-document transaction when the server is a replica set
        or a mongos; a standalone server (or mongomock) gets ordered upserts instead,
        and a failure leaves the records before the failing one written. The broker
        writes the whole current state of each record, so retrying the batch repairs
        that.
        """
        ...

    async def get_order(self, user_id: str, order_id: str) -> Order | None:
        """An order of this user; another user's order is None, never leaked."""
        ...

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> Order | None:
        """The order placed with this ``clientOrderId``: the idempotency look-up."""
        ...

    async def list_orders(
        self,
        user_id: str,
        status: str | None = None,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Order], int]:
        """A user's orders, newest ``created_at`` first; ``start <= created_at < end``."""
        ...

    async def list_pending_orders(
        self, statuses: Sequence[str] = PENDING_ORDER_STATUSES
    ) -> list[Order]:
        """Every user's orders in one of ``statuses``, to restore the engine at startup."""
        ...

    async def list_positions(self, user_id: str, status: str | None = None) -> list[Position]:
        """A user's positions by ticket; ``status`` is ``open`` or ``closed``."""
        ...

    async def list_open_positions(self) -> list[Position]:
        """Every user's open positions, to restore the engine at startup."""
        ...

    async def list_deals(
        self,
        user_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
        symbol: str | None = None,
    ) -> tuple[list[Deal], int]:
        """A user's deals, newest ``time`` first; ``start <= time < end``."""
        ...

    async def list_accounts(self) -> list[Account]:
        """Every account, to restore the engine at startup."""
        ...

    async def next_sequence(self, name: str, *, fence: int | None = None) -> int:
        """The next value (1, 2, ...) of a named counter, atomically, across restarts
        and across processes sharing the store (tickets must never repeat). Fenced
        like :meth:`save`."""
        ...

    async def save_alert(
        self, user_id: str, alert_id: str, alert: Doc, *, fence: int | None = None
    ) -> None:
        """Upsert a user's alert. Raises StoreConflictError if the id is another user's.
        Fenced like :meth:`save`."""
        ...

    async def list_all_alerts(self) -> list[OwnedDoc]:
        """Every user's alerts with their owners, oldest first, to re-arm them at startup."""
        ...
