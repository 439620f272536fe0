"""The engine's working set: accounts, open positions and pending orders, indexed.

Closed positions and finished orders leave the ledger (the store keeps them); what stays
is indexed by symbol, so a tick touches only its own symbol's orders and positions, and
by user, so a user's reads never scan anybody else's.
"""

from __future__ import annotations

from fxgate.domain.trading import Account, Order, Position


class Ledger:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.positions: dict[int, Position] = {}
        self.orders: dict[str, Order] = {}
        # dicts as ordered sets: iteration is oldest first
        self._pos_by_symbol: dict[str, dict[int, None]] = {}
        self._pos_by_user: dict[str, dict[int, None]] = {}
        self._pos_by_user_symbol: dict[tuple[str, str], dict[int, None]] = {}
        self._orders_by_symbol: dict[str, dict[str, None]] = {}
        self._orders_by_user: dict[str, dict[str, None]] = {}

    # positions ---------------------------------------------------------------------

    def put_position(self, position: Position) -> None:
        """Store the new snapshot; a closed position leaves every index."""
        t = position.ticket
        if position.is_open:
            self.positions[t] = position
            self._pos_by_symbol.setdefault(position.symbol, {})[t] = None
            self._pos_by_user.setdefault(position.user_id, {})[t] = None
            key = (position.user_id, position.symbol)
            self._pos_by_user_symbol.setdefault(key, {})[t] = None
            return
        self.positions.pop(t, None)
        self._pos_by_symbol.get(position.symbol, {}).pop(t, None)
        self._pos_by_user.get(position.user_id, {}).pop(t, None)
        self._pos_by_user_symbol.get((position.user_id, position.symbol), {}).pop(t, None)

    def positions_of_symbol(self, symbol: str) -> list[Position]:
        return [self.positions[t] for t in self._pos_by_symbol.get(symbol, ())]

    def positions_of_user(self, user_id: str, symbol: str | None = None) -> list[Position]:
        if symbol is None:
            tickets = self._pos_by_user.get(user_id, {})
        else:
            tickets = self._pos_by_user_symbol.get((user_id, symbol), {})
        return [self.positions[t] for t in tickets]

    def netting_position(self, user_id: str, symbol: str) -> Position | None:
        """The one position of a netting account on ``symbol``, if any."""
        tickets = self._pos_by_user_symbol.get((user_id, symbol))
        if not tickets:
            return None
        return self.positions[next(iter(tickets))]

    # orders ------------------------------------------------------------------------

    def put_order(self, order: Order) -> None:
        """Store the new snapshot; an order that is no longer pending leaves the ledger."""
        oid = order.id
        if order.is_pending:
            self.orders[oid] = order
            self._orders_by_symbol.setdefault(order.symbol, {})[oid] = None
            self._orders_by_user.setdefault(order.user_id, {})[oid] = None
            return
        self.orders.pop(oid, None)
        self._orders_by_symbol.get(order.symbol, {}).pop(oid, None)
        self._orders_by_user.get(order.user_id, {}).pop(oid, None)

    def order_ids_of_symbol(self, symbol: str) -> list[str]:
        """A copy, because working the orders changes the index."""
        return list(self._orders_by_symbol.get(symbol, ()))

    def orders_of_user(self, user_id: str, symbol: str | None = None) -> list[Order]:
        orders = [self.orders[o] for o in self._orders_by_user.get(user_id, ())]
        if symbol is not None:
            orders = [o for o in orders if o.symbol == symbol]
        return orders
