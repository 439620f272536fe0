"""fxgate's public plugin API: everything a plugin imports, and what it is handed.

A plugin (the built-ins in ``plugins/`` as much as a third party's) imports from this
module and from ``fxgate.domain`` only. Its hooks and channels receive a
:class:`PluginAPI`, not the node: a handful of verbs (``publish``, ``ingest``,
``spawn``) and the read-only views a snapshot needs. The node's parts can then be
rearranged, and brokers, stores or buses swapped, without any plugin noticing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from fxgate import hookimpl
from fxgate.domain.events import Event
from fxgate.domain.market import Quote
from fxgate.domain.trading import Account, Deal, Order, OrderBook, Position
from fxgate.plugins.channel import Channel, Filter, Filters, Principal, Scope
from fxgate.services.health import HealthReport
from fxgate.services.presenters import (
    account_payload,
    order_book_payload,
    order_payload,
    position_payload,
    trade_payload,
)

if TYPE_CHECKING:
    from fxgate.config.settings import Settings


class TradingReads(Protocol):
    """The trading state a channel may read: one user's records, never another's."""

    async def account(self, user_id: str) -> Account:
        """The user's account at the latest prices (opened on first use)."""
        ...

    async def positions(self, user_id: str, symbol: str | None = None) -> list[Position]:
        """Open positions, oldest first."""
        ...

    async def pending_orders(self, user_id: str) -> list[Order]:
        """Working (pending) orders, oldest first."""
        ...

    async def deals(self, user_id: str) -> list[Deal]:
        """Every deal of the user's account."""
        ...

    def latest_account(self, user_id: str) -> Account | None:
        """The account as last announced, from memory: cheap enough for ``payload()``."""
        ...

    def open_position(self, user_id: str, ticket: int) -> Position | None:
        """An open position from memory, or None: cheap enough for ``payload()``."""
        ...


class MarketReads(Protocol):
    """The market as the broker's feed shows it."""

    @property
    def symbols(self) -> list[str]:
        """The symbols the feed quotes."""
        ...

    def latest(self, symbols: Iterable[str] | None = None) -> list[Quote]:
        """The latest quote of each symbol (all of them when ``symbols`` is None)."""
        ...

    async def order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        """The broker's depth of market (synthetic on the paper broker)."""
        ...


class HealthReads(Protocol):
    """The gateway's health, as ``GET /health`` and the ``system`` channel show it."""

    @property
    def report(self) -> HealthReport:
        """The latest report (refreshed every couple of seconds)."""
        ...

    def on_change(self, fn: Callable[[HealthReport], None]) -> None:
        """Call ``fn`` with every report whose status or components changed."""
        ...


class SignalReads(Protocol):
    """The stored signals (seed 002's shape), as a user may see them: public ones and
    their own; and the one write a channel that keeps signals needs."""

    async def recent(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The latest ``limit`` signals ``user_id`` may see, oldest first."""
        ...

    async def keep(self, signal: Mapping[str, Any], user_id: str | None = None) -> bool:
        """Store a signal (public for ``user_id=None``) under its uuid, replacing an
        earlier version; True when it is new. ``ConflictError`` for another owner's uuid."""
        ...


class PluginAPI(Protocol):
    """What every hook and channel receives (the hooks' ``api`` argument).

    Available as soon as ``register_channels`` is called; ``publish``, ``ingest`` and
    ``spawn`` are for ``startup`` onwards, when the daemon runs.
    """

    @property
    def version(self) -> str:
        """fxgate's version."""
        ...

    @property
    def settings(self) -> Settings:
        """The daemon's configuration (frozen: read it, never change it)."""
        ...

    @property
    def trading(self) -> TradingReads: ...

    @property
    def market(self) -> MarketReads: ...

    @property
    def health(self) -> HealthReads: ...

    @property
    def signals(self) -> SignalReads: ...

    def recent(self, channel: str, streams: Iterable[str], limit: int) -> list[Mapping[str, Any]]:
        """The payloads of the latest ``limit`` messages the hub keeps (the channel's
        ``history_size``) on those streams of a per-user channel (user ids, or its
        ``shared_stream``), oldest first; from memory, cheap enough for a snapshot."""
        ...

    def publish(self, event: Event) -> None:
        """Fan an event out to its channel's subscribers; never blocks. An event for a
        channel that is not registered is counted and dropped."""
        ...

    def ingest(self, channel: str, data: Any, *, user_id: str | None = None) -> Awaitable[None]:
        """Publish a payload made outside fxgate, validated against its channel first.

        Raises ``ValidationError`` at once for an unknown channel, a per-user channel
        without a user (unless it has a shared stream), or a payload the channel
        refuses. A channel that ``keeps`` its events stores the event first and
        announces it once stored: await the result to know it is (it raises what
        refused the write); ignoring it is fine, a failure is then only logged.
        """
        ...

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run a background task that shutdown cancels; a crash is logged, not lost."""
        ...


__all__ = [
    "Channel",
    "Event",
    "Filter",
    "Filters",
    "HealthReads",
    "HealthReport",
    "MarketReads",
    "PluginAPI",
    "Principal",
    "Scope",
    "SignalReads",
    "TradingReads",
    "account_payload",
    "hookimpl",
    "order_book_payload",
    "order_payload",
    "position_payload",
    "trade_payload",
]
