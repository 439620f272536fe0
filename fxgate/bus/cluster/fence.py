"""The fence on the leader's trading writes: no valid lease, no write; a stale token, no
write either.

Wraps the trading area of the store the broker and the trading service write to. Two
checks, cheapest first:

- the lease's local deadline (no I/O), so it costs nothing on the broker's write path;
  see :mod:`fxgate.bus.cluster.lease` for why it stops a leader paused past its lease;
- the store's: every write carries the leader's fencing token, and the store refuses,
  atomically with the write, a token lower than one it has seen
  (:class:`~fxgate.services.ports.store.errors.StaleFenceError`). That one holds when
  the clock is wrong about the lease (its key lost in a Redis failover).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fxgate.domain.trading import Account, Deal, Order, Position
from fxgate.services.ports.store.errors import StaleFenceError, StoreFencedError
from fxgate.services.ports.store.records import Doc


class LeaseLostError(StoreFencedError):
    """A trading write on a node that does not (or no longer) hold the leader lease."""


def _none() -> int | None:
    return None


class FencedTradingStore:
    """A :class:`~fxgate.services.ports.store.trading.TradingStore` whose writes pass
    ``valid()`` first and carry ``token()`` to the store; reads go straight through. A
    write refused here calls ``refused()``, one the store refuses ``superseded()``,
    before it raises, so the node acts on the lost lease at once (stops its broker)
    instead of at the lease's next renewal."""

    def __init__(
        self,
        inner: Any,
        valid: Callable[[], bool],
        refused: Callable[[], None] = lambda: None,
        *,
        token: Callable[[], int | None] = _none,
        superseded: Callable[[], None] = lambda: None,
    ) -> None:
        self._inner = inner
        self._valid = valid
        self._refused = refused
        self._token = token
        self._superseded = superseded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextlib.contextmanager
    def _fenced(self) -> Iterator[int | None]:
        """One write: refused here without a valid lease, else given the token; one
        the store refuses (a newer token there) reports the lease superseded."""
        if not self._valid():
            self._refused()
            raise LeaseLostError("this node is not the trading leader (no valid lease)")
        try:
            yield self._token()
        except StaleFenceError:
            self._superseded()
            raise

    async def save(
        self,
        *,
        orders: Sequence[Order] = (),
        deals: Sequence[Deal] = (),
        positions: Sequence[Position] = (),
        accounts: Sequence[Account] = (),
    ) -> None:
        with self._fenced() as fence:
            await self._inner.save(
                orders=orders, deals=deals, positions=positions, accounts=accounts, fence=fence
            )

    async def next_sequence(self, name: str) -> int:
        with self._fenced() as fence:
            return int(await self._inner.next_sequence(name, fence=fence))

    async def save_alert(self, user_id: str, alert_id: str, alert: Doc) -> None:
        with self._fenced() as fence:
            await self._inner.save_alert(user_id, alert_id, alert, fence=fence)


class FencedStore:
    """The store with its trading area fenced, for the broker and the trading service."""

    def __init__(
        self,
        inner: Any,
        valid: Callable[[], bool],
        refused: Callable[[], None] = lambda: None,
        *,
        token: Callable[[], int | None] = _none,
        superseded: Callable[[], None] = lambda: None,
    ) -> None:
        self._inner = inner
        self.trading = FencedTradingStore(
            inner.trading, valid, refused, token=token, superseded=superseded
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
