"""The fence on the leader's trading writes: no valid lease, no write.

Wraps the trading area of the store the broker and the trading service write to. The
check is a comparison with the lease's local deadline (no I/O), so it costs nothing on
the broker's write path; see :mod:`fxgate.bus.cluster.lease` for why it is enough to stop
a leader that was paused past its lease.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fxgate.domain.trading import Account, Deal, Order, Position
from fxgate.services.ports.store.errors import StoreFencedError
from fxgate.services.ports.store.records import Doc


class LeaseLostError(StoreFencedError):
    """A trading write on a node that does not (or no longer) hold the leader lease."""


class FencedTradingStore:
    """A :class:`~fxgate.services.ports.store.trading.TradingStore` whose writes pass
    ``valid()`` first; reads go straight through. A refused write calls ``refused()``
    before it raises, so the node acts on the lost lease at once (stops its broker)
    instead of at the lease's next renewal."""

    def __init__(
        self, inner: Any, valid: Callable[[], bool], refused: Callable[[], None] = lambda: None
    ) -> None:
        self._inner = inner
        self._valid = valid
        self._refused = refused

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _check(self) -> None:
        if not self._valid():
            self._refused()
            raise LeaseLostError("this node is not the trading leader (no valid lease)")

    async def save(
        self,
        *,
        orders: Sequence[Order] = (),
        deals: Sequence[Deal] = (),
        positions: Sequence[Position] = (),
        accounts: Sequence[Account] = (),
    ) -> None:
        self._check()
        await self._inner.save(orders=orders, deals=deals, positions=positions, accounts=accounts)

    async def next_sequence(self, name: str) -> int:
        self._check()
        return int(await self._inner.next_sequence(name))

    async def save_alert(self, user_id: str, alert_id: str, alert: Doc) -> None:
        self._check()
        await self._inner.save_alert(user_id, alert_id, alert)


class FencedStore:
    """The store with its trading area fenced, for the broker and the trading service."""

    def __init__(
        self, inner: Any, valid: Callable[[], bool], refused: Callable[[], None] = lambda: None
    ) -> None:
        self._inner = inner
        self.trading = FencedTradingStore(inner.trading, valid, refused)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
