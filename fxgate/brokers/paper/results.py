"""What one engine call changed, in order, so the caller can store it and then announce it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fxgate.domain.trading import Account, Deal, Order, Position

TradeRecord = Order | Deal | Position | Account


@dataclass(slots=True)
class EngineResult:
    """The outcome of one engine call.

    ``changes`` are trading changes (orders, deals, positions, accounts) in the order
    they happened; each is the full new snapshot, so the last snapshot of an entity is
    its state. They must all be stored, atomically, before any is announced.

    ``revalued`` are positions and accounts whose only change is the revaluation at a new
    price (floating profit, equity, margin level). They can be conflated and stored
    lazily: the next quote recomputes them. An entity that also appears in ``changes``
    is left out of ``revalued``, so a revaluation never overwrites a trading change.

    ``subject`` is the order, position or account the call acted on, in its final state.
    """

    changes: list[TradeRecord] = field(default_factory=list)
    revalued: list[Position | Account] = field(default_factory=list)
    subject: TradeRecord | None = None

    @property
    def orders(self) -> list[Order]:
        return [c for c in self.changes if isinstance(c, Order)]

    @property
    def deals(self) -> list[Deal]:
        return [c for c in self.changes if isinstance(c, Deal)]

    @property
    def positions(self) -> list[Position]:
        return [c for c in self.changes if isinstance(c, Position)]

    @property
    def accounts(self) -> list[Account]:
        return [c for c in self.changes if isinstance(c, Account)]


class Txn:
    """Collects one engine call's changes, then settles the accounts it touched.

    Accounts are never added directly: touching a user marks its account, and ``finish``
    appends each touched account once, in its final state, after the changes that moved it.
    """

    __slots__ = ("_dirty", "_floating", "_marks", "changes", "subject")

    def __init__(self) -> None:
        self.changes: list[TradeRecord] = []
        self.subject: TradeRecord | None = None
        self._dirty: dict[str, None] = {}
        self._floating: dict[str, None] = {}
        self._marks: dict[int, Position] = {}

    def add(self, *records: TradeRecord) -> None:
        self.changes.extend(records)

    def touch(self, user_id: str) -> None:
        """The user's account changed by trading (balance, margin, a new position...)."""
        self._dirty[user_id] = None

    def mark(self, position: Position) -> None:
        """The position was revalued at a new price, and so is its owner's account."""
        self._marks[position.ticket] = position
        self._floating[position.user_id] = None

    def users(self) -> list[str]:
        return list({**self._floating, **self._dirty})

    def floating_users(self) -> list[str]:
        return list(self._floating)

    def finish(self, settle: Callable[[str], Account]) -> EngineResult:
        traded = {c.ticket for c in self.changes if isinstance(c, Position)}
        revalued: list[Position | Account] = [p for t, p in self._marks.items() if t not in traded]
        for user_id in self._dirty:
            self.changes.append(settle(user_id))
        for user_id in self._floating:
            if user_id not in self._dirty:
                revalued.append(settle(user_id))
        return EngineResult(self.changes, revalued, self.subject)
