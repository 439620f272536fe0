"""Turning executions into deals, positions and balances, the way MT5 books them.

Hedging accounts: every fill of a new order opens its own position, whose ticket is the
order's ticket; further fills of the same order add to that position. Netting accounts:
one position per symbol; a fill on the same side adds to it (at the volume-weighted
average price), a fill on the other side reduces it, closes it, or closes it and opens
the rest the other way (a reversal is booked as an ``out`` deal and an ``in`` deal, and
the new position takes the reversing order's ticket).

Commission (``commission_per_lot`` per side) is charged to the balance at every deal,
as MT5 charges it; floating profit is not in the balance until an ``out`` deal realises
it. Every amount is rounded to the account currency's digits when it is booked, so the
balance is always the exact sum of the deals.

Callers check first (``check_rates``, the margin check) and only then call ``fill`` or
``reduce``, which do not fail: an execution is booked entirely or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal

from fxgate.brokers.paper import margin as mt5
from fxgate.brokers.paper.ledger import Ledger
from fxgate.brokers.paper.margin import BidAsk, conversion_path, exit_price
from fxgate.brokers.paper.results import TradeRecord
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.domain.errors import refused
from fxgate.domain.market import SymbolSpec
from fxgate.domain.money import ZERO, round_money, round_price
from fxgate.domain.trading import (
    Account,
    AccountMode,
    Deal,
    DealEntry,
    Order,
    OrderStatus,
    Position,
    PositionStatus,
    Side,
)

#: A would-be position ``(symbol, side, lots, margin)``, priced before a fill.
Leg = tuple[str, Side, Decimal, Decimal]

#: Extra digits kept in volume-weighted average prices (netting adds, partial fills).
AVERAGE_EXTRA_DIGITS = 3


class Accounting:
    def __init__(
        self,
        specs: Mapping[str, SymbolSpec],
        settings: PaperSettings,
        ledger: Ledger,
        prices: Mapping[str, BidAsk],
        next_ticket: Callable[[], int],
    ) -> None:
        self._specs = specs
        self._settings = settings
        self._ledger = ledger
        self._prices = prices
        self._next_ticket = next_ticket

    # -- checks and quotes (no side effects) -------------------------------------------

    def check_rates(self, symbol: str, currency: str) -> None:
        """Refuse an execution whose margin or profit could not be converted yet."""
        spec = self._specs[symbol]
        for ccy in (spec.margin_currency, spec.profit_currency):
            path = conversion_path(ccy, currency, self._prices)
            if path is None:
                raise refused(
                    f"No price yet to convert {ccy} into {currency}",
                    "no_conversion_rate",
                    symbol=symbol,
                )

    def commission(self, currency: str, volume: Decimal) -> Decimal:
        """The (negative) commission of a deal of ``volume`` lots."""
        if not self._settings.commission_per_lot:
            return round_money(ZERO, currency)
        return -round_money(self._settings.commission_per_lot * volume, currency)

    def margin(
        self, account: Account, symbol: str, side: Side, volume: Decimal, price: Decimal
    ) -> Decimal:
        spec = self._specs[symbol]
        return mt5.required_margin(
            spec, side, volume, price, account.leverage, account.currency, self._prices
        )

    def lot_margin(self, account: Account, symbol: str, side: Side) -> Decimal:
        """The unrounded margin of one lot at current prices, which is what an open
        position costs per lot now (MT5 recomputes it at current rates); margin is linear
        in lots, so a tick prices every position of a symbol and side with one conversion."""
        spec = self._specs[symbol]
        price = mt5.entry_price(side, self._prices[symbol])
        amount, currency = mt5.margin_amount(spec, Decimal(1), price, account.leverage)
        rate_side = mt5.RateSide.ASK if side is Side.BUY else mt5.RateSide.BID
        return mt5.convert(amount, currency, account.currency, self._prices, rate_side)

    def used_margin(self, user_id: str, extra: Leg | None = None) -> Decimal:
        """The account's margin: per symbol, its positions' margins with the hedged volume
        charged as MT5 charges it; ``extra`` adds a would-be leg ``(symbol, side, lots,
        margin)`` to price a fill before it happens."""
        # symbol -> [buy lots, buy margin, sell lots, sell margin]; on every tick, so flat
        legs: dict[str, list[Decimal]] = {}
        for p in self._ledger.positions_of_user(user_id):
            self._add_leg(legs, p.symbol, p.side, p.volume, p.margin)
        if extra is not None:
            self._add_leg(legs, *extra)
        total = ZERO
        for symbol, (bl, bm, sl, sm) in legs.items():
            if bl and sl:
                total += mt5.hedged_margin(self._specs[symbol], bl, bm, sl, sm)
            else:
                total += bm + sm
        return total

    @staticmethod
    def _add_leg(
        legs: dict[str, list[Decimal]], symbol: str, side: Side, lots: Decimal, margin: Decimal
    ) -> None:
        sums = legs.get(symbol)
        if sums is None:
            sums = legs[symbol] = [ZERO, ZERO, ZERO, ZERO]
        i = 0 if side is Side.BUY else 2
        sums[i] += lots
        sums[i + 1] += margin

    def margin_needed(
        self, account: Account, symbol: str, side: Side, volume: Decimal, price: Decimal
    ) -> Decimal:
        """What a fill of ``volume`` lots adds to the account's margin (hedging relief
        included); ``volume`` is the part that adds exposure (``opening_volume``)."""
        leg = self.margin(account, symbol, side, volume, price)
        if account.mode is AccountMode.NETTING:
            return leg
        before = round_money(self.used_margin(account.user_id), account.currency)
        after = round_money(
            self.used_margin(account.user_id, (symbol, side, volume, leg)), account.currency
        )
        return max(ZERO, after - before)

    def opening_volume(self, account: Account, symbol: str, side: Side, volume: Decimal) -> Decimal:
        """How much of a fill adds exposure (and needs margin): on a netting account, the
        part that first offsets an opposite position does not."""
        if account.mode is AccountMode.HEDGING:
            return volume
        pos = self._ledger.netting_position(account.user_id, symbol)
        if pos is None or pos.side is side:
            return volume
        return max(ZERO, volume - pos.volume)

    # -- account figures ----------------------------------------------------------------

    def refresh(self, user_id: str, now: float) -> Account:
        """Recompute equity, margin and margin level from the open positions."""
        acc = self._ledger.accounts[user_id]
        floating = swap = ZERO
        for p in self._ledger.positions_of_user(user_id):
            floating += p.profit
            swap += p.swap
        ccy = acc.currency
        floating, swap = round_money(floating, ccy), round_money(swap, ccy)
        used = round_money(self.used_margin(user_id), ccy)
        equity = mt5.equity(acc.balance, floating, swap)
        level = mt5.margin_level(equity, used)
        new = acc.evolve(
            equity=equity,
            margin=used,
            free_margin=mt5.free_margin(equity, used),
            margin_level=level,
            profit=floating,
            margin_call=level is not None and level < self._settings.margin_call_level,
            updated_at=now,
        )
        self._ledger.accounts[user_id] = new
        return new

    def _credit(self, user_id: str, amount: Decimal) -> None:
        acc = self._ledger.accounts[user_id]
        self._ledger.accounts[user_id] = replace(
            acc,
            balance=acc.balance + amount,
            realized_pnl=acc.realized_pnl + amount,
            day_realized_pnl=acc.day_realized_pnl + amount,
        )

    # -- executions ---------------------------------------------------------------------

    def fill(
        self, order: Order, volume: Decimal, price: Decimal, now: float
    ) -> tuple[Order, list[TradeRecord]]:
        """Book ``volume`` lots of ``order`` dealt at ``price``.

        Returns the order's new snapshot (stored in the ledger) and the deals and
        positions it produced, in order.
        """
        account = self._ledger.accounts[order.user_id]
        records: list[TradeRecord] = []
        rest = volume
        pos: Position | None
        if account.mode is AccountMode.NETTING:
            pos = self._ledger.netting_position(order.user_id, order.symbol)
            if pos is not None and pos.side is not order.side:
                closing = min(rest, pos.volume)
                pos = self.reduce(pos, closing, price, order, now, records)
                rest -= closing
        elif order.position_ticket is not None:
            pos = self._ledger.positions.get(order.position_ticket)
        else:
            pos = None
        position_ticket = pos.ticket if pos is not None else order.position_ticket
        if rest > 0:
            if pos is not None and pos.is_open and pos.side is order.side:
                pos = self._increase(pos, rest, price, order, now, records)
            else:
                # the order's ticket names the position it opens, unless an earlier
                # fill of this order already gave that ticket to a position now closed
                ticket = order.ticket if order.filled_volume == 0 else self._next_ticket()
                pos = self._open(ticket, rest, price, order, now, records)
            position_ticket = pos.ticket
        filled = order.filled_volume + volume
        if order.average_price is None or order.filled_volume == 0:
            average = price
        else:
            average = self._average(
                order.symbol, order.average_price, order.filled_volume, price, volume
            )
        done = filled >= order.volume
        new = replace(
            order,
            filled_volume=filled,
            average_price=average,
            status=OrderStatus.FILLED if done else order.status,
            filled_at=now if done else order.filled_at,
            updated_at=now,
            position_ticket=position_ticket,
        )
        self._ledger.put_order(new)
        return new, records

    def reduce(
        self,
        pos: Position,
        volume: Decimal,
        price: Decimal,
        order: Order,
        now: float,
        records: list[TradeRecord],
    ) -> Position:
        """Close ``volume`` lots of ``pos`` at ``price`` with an ``out`` deal."""
        account = self._ledger.accounts[pos.user_id]
        spec = self._specs[pos.symbol]
        ccy = account.currency
        gross = mt5.profit(spec, pos.side, volume, pos.open_price, price, ccy, self._prices)
        commission = self.commission(ccy, volume)
        remaining = pos.volume - volume
        deal = self._deal(
            order,
            pos.ticket,
            DealEntry.OUT,
            volume,
            price,
            now,
            profit=gross,
            commission=commission,
        )
        if remaining <= 0:
            new = replace(
                pos,
                status=PositionStatus.CLOSED,
                closed_at=now,
                close_price=price,
                current_price=price,
                profit=gross,
                margin=round_money(ZERO, ccy),
                commission=pos.commission + commission,
                realized_pnl=pos.realized_pnl + gross + commission,
                updated_at=now,
            )
        else:
            current = self._current(pos.symbol, pos.side, pos.current_price)
            new = replace(
                pos,
                volume=remaining,
                margin=round_money(pos.margin * remaining / pos.volume, ccy),
                current_price=current,
                profit=mt5.profit(
                    spec, pos.side, remaining, pos.open_price, current, ccy, self._prices
                ),
                commission=pos.commission + commission,
                realized_pnl=pos.realized_pnl + gross + commission,
                updated_at=now,
            )
        self._credit(pos.user_id, gross + commission)
        self._ledger.put_position(new)
        records += [deal, new]
        return new

    def _open(
        self,
        ticket: int,
        volume: Decimal,
        price: Decimal,
        order: Order,
        now: float,
        records: list[TradeRecord],
    ) -> Position:
        account = self._ledger.accounts[order.user_id]
        spec = self._specs[order.symbol]
        ccy = account.currency
        commission = self.commission(ccy, volume)
        current = self._current(order.symbol, order.side, price)
        pos = Position(
            ticket=ticket,
            user_id=order.user_id,
            symbol=order.symbol,
            side=order.side,
            volume=volume,
            open_price=price,
            current_price=current,
            opened_at=now,
            updated_at=now,
            stop_loss=order.stop_loss,
            take_profit=order.take_profit,
            profit=mt5.profit(spec, order.side, volume, price, current, ccy, self._prices),
            swap=round_money(ZERO, ccy),
            commission=commission,
            margin=self.margin(account, order.symbol, order.side, volume, price),
            realized_pnl=commission,
            strategy_id=order.strategy_id,
            connection_id=order.connection_id,
            comment=order.comment,
        )
        deal = self._deal(order, ticket, DealEntry.IN, volume, price, now, commission=commission)
        self._credit(order.user_id, commission)
        self._ledger.put_position(pos)
        records += [deal, pos]
        return pos

    def _increase(
        self,
        pos: Position,
        volume: Decimal,
        price: Decimal,
        order: Order,
        now: float,
        records: list[TradeRecord],
    ) -> Position:
        account = self._ledger.accounts[pos.user_id]
        spec = self._specs[pos.symbol]
        ccy = account.currency
        commission = self.commission(ccy, volume)
        total = pos.volume + volume
        average = self._average(pos.symbol, pos.open_price, pos.volume, price, volume)
        current = self._current(pos.symbol, pos.side, pos.current_price)
        new = replace(
            pos,
            volume=total,
            open_price=average,
            current_price=current,
            profit=mt5.profit(spec, pos.side, total, average, current, ccy, self._prices),
            margin=self.margin(
                account, pos.symbol, pos.side, total, self._entry(pos.symbol, pos.side, price)
            ),
            commission=pos.commission + commission,
            realized_pnl=pos.realized_pnl + commission,
            stop_loss=order.stop_loss if order.stop_loss is not None else pos.stop_loss,
            take_profit=order.take_profit if order.take_profit is not None else pos.take_profit,
            updated_at=now,
        )
        deal = self._deal(
            order, pos.ticket, DealEntry.IN, volume, price, now, commission=commission
        )
        self._credit(pos.user_id, commission)
        self._ledger.put_position(new)
        records += [deal, new]
        return new

    # -- helpers -----------------------------------------------------------------------

    def _deal(
        self,
        order: Order,
        position_ticket: int,
        entry: DealEntry,
        volume: Decimal,
        price: Decimal,
        now: float,
        *,
        profit: Decimal | None = None,
        commission: Decimal = ZERO,
    ) -> Deal:
        zero = round_money(ZERO, self._ledger.accounts[order.user_id].currency)
        return Deal(
            ticket=self._next_ticket(),
            order_ticket=order.ticket,
            position_ticket=position_ticket,
            user_id=order.user_id,
            symbol=order.symbol,
            side=order.side,
            entry=entry,
            volume=volume,
            price=price,
            time=now,
            profit=zero if profit is None else profit,
            commission=commission,
            swap=zero,
            strategy_id=order.strategy_id,
            connection_id=order.connection_id,
            reason=order.reason,
            comment=order.comment,
        )

    def _entry(self, symbol: str, side: Side, fallback: Decimal) -> Decimal:
        prices = self._prices.get(symbol)
        return mt5.entry_price(side, prices) if prices is not None else fallback

    def _current(self, symbol: str, side: Side, fallback: Decimal) -> Decimal:
        prices = self._prices.get(symbol)
        return exit_price(side, prices) if prices is not None else fallback

    def _average(self, symbol: str, p1: Decimal, v1: Decimal, p2: Decimal, v2: Decimal) -> Decimal:
        digits = self._specs[symbol].digits + AVERAGE_EXTRA_DIGITS
        return round_price((p1 * v1 + p2 * v2) / (v1 + v2), digits)
