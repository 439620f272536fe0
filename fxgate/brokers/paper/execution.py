"""Executions inside the engine: working orders, closing positions, revaluing, stopping out.

These are the steps a request or a tick is made of; ``engine.py`` validates requests and
decides which steps to run, this module runs them against the ledger and records what
they changed in the call's ``Txn``. ``now`` is the engine call's single clock reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

from fxgate.brokers.paper import matching
from fxgate.brokers.paper.accounting import Accounting
from fxgate.brokers.paper.ledger import Ledger
from fxgate.brokers.paper.margin import BidAsk, entry_price, exit_price, profit
from fxgate.brokers.paper.results import TradeRecord, Txn
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.domain.errors import InsufficientBalanceError, TradingError
from fxgate.domain.market import SymbolSpec
from fxgate.domain.money import round_money
from fxgate.domain.trading import (
    Order,
    OrderReason,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    order_id_for,
)

#: Times in force under which an order that cannot fill now waits for the price.
WAITING = frozenset({TimeInForce.GTC, TimeInForce.GTD})


_ENDED = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED})


class Executor:
    def __init__(
        self,
        specs: Mapping[str, SymbolSpec],
        settings: PaperSettings,
        ledger: Ledger,
        prices: Mapping[str, BidAsk],
        accounting: Accounting,
        next_ticket: Callable[[], int],
    ) -> None:
        self._specs = specs
        self._settings = settings
        self._ledger = ledger
        self._prices = prices
        self._acct = accounting
        self._next_ticket = next_ticket
        self.now = 0.0
        # (symbol, side, currency, leverage) -> one lot's margin, for the current tick
        self._lot_margins: dict[tuple[str, Side, str, int], Decimal] = {}

    def tick(self, tx: Txn, symbol: str, prices: BidAsk, dependents: Iterable[str]) -> None:
        """A new price of ``symbol`` (already in the price table): revalue every position
        it values, work the symbol's orders, hit stops, then stop out."""
        self._lot_margins.clear()
        for sym in (symbol, *dependents):
            for pos in self._ledger.positions_of_symbol(sym):
                self.revalue(tx, pos)
        for user_id in tx.floating_users():
            self._acct.refresh(user_id, self.now)
        for order_id in self._ledger.order_ids_of_symbol(symbol):
            order = self._ledger.orders.get(order_id)
            if order is not None:
                self.work(tx, order, prices)
        for pos in self._ledger.positions_of_symbol(symbol):
            reason = matching.stop_hit(pos, prices)
            if reason is not None and self._can_value(pos):
                level = pos.stop_loss if reason is OrderReason.STOP_LOSS else pos.take_profit
                comment = f"[{reason.value} {level}]"
                self.close(tx, pos, pos.volume, exit_price(pos.side, prices), reason, comment)
        for user_id in tx.users():
            self.stop_out(tx, user_id)

    def work(self, tx: Txn, order: Order, prices: BidAsk) -> None:
        """Give a working order its chance at the current price (an expired one has
        none: it ends ``expired`` before the price can fill it)."""
        if order.expires_at is not None and order.expires_at <= self.now:
            self.end(tx, order, OrderStatus.EXPIRED, "Expired")
            return
        try:
            self._acct.check_rates(order.symbol, self._ledger.accounts[order.user_id].currency)
        except TradingError:
            return  # a conversion price is still missing: wait for it
        if matching.executes_as_market(order):
            self.execute(tx, order, prices, placing=False)
            return
        if matching.executes_as_limit(order):
            if matching.limit_reached(order, prices):
                self.execute(tx, order, prices, placing=False)
            return
        if not matching.stop_reached(order, prices):
            return
        order = replace(order, triggered_at=self.now, updated_at=self.now)
        self._ledger.put_order(order)
        if order.type is OrderType.STOP or matching.limit_reached(order, prices):
            self.execute(tx, order, prices, placing=False)
        elif order.time_in_force not in WAITING:
            self.end(tx, order, OrderStatus.CANCELLED, "Limit price not reachable at the trigger")
        else:
            tx.add(order)

    def execute(self, tx: Txn, order: Order, prices: BidAsk, *, placing: bool) -> Order:
        """Fill as much of ``order`` as its time in force and the depth allow."""
        remaining = order.remaining_volume
        volume = min(remaining, self._settings.liquidity)
        if order.time_in_force is TimeInForce.FOK and volume < remaining:
            return self.end(
                tx,
                order,
                OrderStatus.CANCELLED,
                f"FOK: only {volume} of {remaining} lots available",
            )
        price = entry_price(order.side, prices)
        acc = self._acct.refresh(order.user_id, self.now)
        opening = self._acct.opening_volume(acc, order.symbol, order.side, volume)
        if opening > 0:
            need = self._acct.margin_needed(acc, order.symbol, order.side, opening, price)
            need -= self._acct.commission(acc.currency, volume)
            if need > acc.free_margin:
                message = f"Not enough free margin: {need} {acc.currency} needed"
                if placing:
                    raise InsufficientBalanceError(
                        message,
                        details={
                            "reason": "insufficient_margin",
                            "required": str(need),
                            "freeMargin": str(acc.free_margin),
                        },
                    )
                status = OrderStatus.REJECTED if order.filled_volume == 0 else OrderStatus.CANCELLED
                return self.end(tx, order, status, message)
        order, records = self._acct.fill(order, volume, price, self.now)
        if order.is_pending and order.time_in_force is TimeInForce.IOC:
            order = self._finalize(order, OrderStatus.CANCELLED, "IOC: the rest was cancelled")
        tx.add(order, *records)
        tx.touch(order.user_id)
        return order

    def end(self, tx: Txn, order: Order, status: OrderStatus, reason: str | None) -> Order:
        order = self._finalize(order, status, reason)
        tx.add(order)
        return order

    def _finalize(self, order: Order, status: OrderStatus, reason: str | None) -> Order:
        order = replace(
            order,
            status=status,
            reject_reason=reason,
            cancelled_at=self.now if status in _ENDED else None,
            updated_at=self.now,
        )
        self._ledger.put_order(order)
        return order

    def close(
        self,
        tx: Txn,
        pos: Position,
        volume: Decimal,
        price: Decimal,
        reason: OrderReason,
        comment: str | None,
    ) -> Position:
        """Close ``volume`` lots of ``pos`` with a filled closing order, as MT5 books it."""
        ticket = self._next_ticket()
        order = Order(
            id=order_id_for(ticket),
            ticket=ticket,
            user_id=pos.user_id,
            symbol=pos.symbol,
            type=OrderType.MARKET,
            side=pos.side.opposite,
            volume=volume,
            created_at=self.now,
            updated_at=self.now,
            time_in_force=TimeInForce.IOC,
            status=OrderStatus.FILLED,
            filled_volume=volume,
            average_price=price,
            filled_at=self.now,
            position_ticket=pos.ticket,
            reason=reason,
            comment=comment,
            strategy_id=pos.strategy_id,
            connection_id=pos.connection_id,
        )
        collected: list[TradeRecord] = []
        new = self._acct.reduce(pos, volume, price, order, self.now, collected)
        tx.add(order, *collected)
        tx.touch(pos.user_id)
        return new

    def revalue(self, tx: Txn, pos: Position) -> None:
        prices = self._prices.get(pos.symbol)
        if prices is None:
            return
        acc = self._ledger.accounts[pos.user_id]
        current = exit_price(pos.side, prices)
        try:
            value = profit(
                self._specs[pos.symbol],
                pos.side,
                pos.volume,
                pos.open_price,
                current,
                acc.currency,
                self._prices,
            )
            key = (pos.symbol, pos.side, acc.currency, acc.leverage)
            per_lot = self._lot_margins.get(key)
            if per_lot is None:
                per_lot = self._lot_margins[key] = self._acct.lot_margin(acc, pos.symbol, pos.side)
            margin = round_money(per_lot * pos.volume, acc.currency)
        except TradingError:
            return
        if current == pos.current_price and value == pos.profit and margin == pos.margin:
            return
        pos = pos.evolve(current_price=current, profit=value, margin=margin, updated_at=self.now)
        self._ledger.put_position(pos)
        tx.mark(pos)

    def stop_out(self, tx: Txn, user_id: str) -> None:
        level_limit = self._settings.stop_out_level
        acc = self._acct.refresh(user_id, self.now)
        while acc.margin_level is not None and acc.margin_level < level_limit:
            positions = self._ledger.positions_of_user(user_id)
            if not positions:
                return
            worst = min(positions, key=lambda p: p.profit)  # oldest first among equals
            prices = self._prices.get(worst.symbol)
            if prices is None:
                return
            if not self._can_value(worst):
                return
            comment = f"[so {acc.margin_level}%]"
            price = exit_price(worst.side, prices)
            self.close(tx, worst, worst.volume, price, OrderReason.STOP_OUT, comment)
            acc = self._acct.refresh(user_id, self.now)

    def _can_value(self, pos: Position) -> bool:
        """Whether the prices needed to book a close of ``pos`` are all there."""
        try:
            self._acct.check_rates(pos.symbol, self._ledger.accounts[pos.user_id].currency)
        except TradingError:
            return False
        return True
