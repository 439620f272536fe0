"""The broker as a node that does not lead sees it: its state read from the leader.

A follower's own broker never starts (one writer), so its memory is empty. The trading
service, the REST reads and the channels' snapshots ask the broker for a user's account,
positions and pending orders; here those reads run on the leader's broker, over the same
command stream as the writes, so every node answers with the one current state
(floating profit included). On the leader, and for what needs no state (symbols,
margin arithmetic, deals, which come from the store), the node's own broker answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fxgate.bus.cluster.commands import CommandRouter
from fxgate.domain.trading import Account, AccountTerms, Order, Position


class FollowerBroker:
    """A :class:`~fxgate.services.ports.broker.Broker`: ``inner`` while this node leads,
    the leader's answers for the stateful reads while it does not."""

    def __init__(self, inner: Any, router: CommandRouter) -> None:
        self._inner = inner
        self._router = router
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def healthy(self) -> bool:
        return bool(self._inner.healthy)

    def subscribe(self, listener: Callable[..., None]) -> Callable[[], None]:
        unsubscribe: Callable[[], None] = self._inner.subscribe(listener)
        return unsubscribe

    def _local(self) -> bool:
        return self._router.leading

    async def account(self, user_id: str) -> Account:
        if self._local():
            account: Account = await self._inner.account(user_id)
            return account
        remote: Account = await self._router.read("account", user_id, {})
        return remote

    async def account_terms(self, user_id: str) -> AccountTerms:
        if self._local():
            terms: AccountTerms = await self._inner.account_terms(user_id)
            return terms
        remote: AccountTerms = await self._router.read("account_terms", user_id, {})
        return remote

    async def positions(self, user_id: str, symbol: str | None = None) -> Sequence[Position]:
        if self._local():
            positions: Sequence[Position] = await self._inner.positions(user_id, symbol)
            return positions
        remote: list[Position] = await self._router.read("positions", user_id, {"symbol": symbol})
        return remote

    async def position(self, user_id: str, ticket: int) -> Position:
        if self._local():
            position: Position = await self._inner.position(user_id, ticket)
            return position
        remote: Position = await self._router.read("position", user_id, {"ticket": ticket})
        return remote

    def open_position(self, user_id: str, ticket: int) -> Position | None:
        # Synchronous, from memory, for payloads on the hot path: a follower has none.
        if self._local():
            found: Position | None = self._inner.open_position(user_id, ticket)
            return found
        return None

    async def orders(self, user_id: str, symbol: str | None = None) -> Sequence[Order]:
        if self._local():
            orders: Sequence[Order] = await self._inner.orders(user_id, symbol)
            return orders
        remote: list[Order] = await self._router.read("orders", user_id, {"symbol": symbol})
        return remote
