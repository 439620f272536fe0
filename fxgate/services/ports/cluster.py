"""The cluster ports: who may write trading state, and how a trading command reaches it.

Trading state has one writer (DESIGN.md, "Bus"): with the redis bus, the broker runs on
the leader node only. The web layer sends every trading *write* through
:class:`TradingCommands`; in one process that is the :class:`~fxgate.services.trading.
TradingService` itself (called directly, nothing added), in a cluster it is a client that
runs the command on the leader, or sends it there over Redis and waits for the answer.
Reads stay on the node that serves them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol

from fxgate.domain.events import Event
from fxgate.domain.trading import Order, OrderChanges, OrderRequest, Position
from fxgate.services.ports.broker import Broker
from fxgate.services.ports.store import Store


class TradingCommands(Protocol):
    """The trading writes, as :class:`~fxgate.services.trading.TradingService` has them."""

    async def place_order(
        self, user_id: str, request: OrderRequest, *, actor: str | None = None
    ) -> tuple[Order, bool]: ...

    async def modify_order(
        self, user_id: str, order_id: str, changes: OrderChanges, *, actor: str | None = None
    ) -> Order: ...

    async def cancel_order(
        self, user_id: str, order_id: str, *, actor: str | None = None
    ) -> Order: ...

    async def close_position(
        self,
        user_id: str,
        ticket: int,
        volume: Decimal | None = None,
        *,
        actor: str | None = None,
    ) -> Position: ...

    async def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        *,
        actor: str | None = None,
    ) -> Position: ...


class Cluster(Protocol):
    """This node's place in a cluster: elects the leader, routes the commands."""

    #: The commands, routed to the leader (run here when this node leads).
    commands: TradingCommands

    @property
    def is_leader(self) -> bool: ...

    def lease_valid(self) -> bool:
        """Whether this node holds the lease *now*, by its own clock (no I/O): the fence
        every trading store write passes, so a paused old leader writes nothing."""
        ...

    def fence(self, store: Store) -> Store:
        """``store`` with its trading writes behind :meth:`lease_valid` (for the broker
        and the trading service)."""
        ...

    def broker_view(self, broker: Broker) -> Broker:
        """``broker`` for the trading service: itself while this node leads; while it
        does not, one whose account, position and order reads the leader answers."""
        ...

    def attach(
        self,
        local: TradingCommands,
        flush: Callable[[], Awaitable[None]] | None = None,
        announced: Callable[[Event], Awaitable[bool]] | None = None,
    ) -> None:
        """The trading service the commands run on while this node leads, and the bus's
        ``flush``: a write is answered once the events it caused are on the bus.
        ``announced``: whether an event went out already (in its stream's history), so
        a new leader announcing again a dead one's order sends only what was not."""

    async def start(
        self,
        *,
        on_elected: Callable[[], Awaitable[None]],
        on_lost: Callable[[], None],
        on_follow: Callable[[], None],
    ) -> None:
        """Join: campaign for the lease (when eligible) and listen for answers.
        ``on_lost``: this node no longer leads (its broker must stop); ``on_follow``:
        another node leads (a market feed still running here must stop)."""

    async def stop(self) -> None: ...

    def healthy(self) -> bool:
        """False while Redis cannot be reached."""
        ...
