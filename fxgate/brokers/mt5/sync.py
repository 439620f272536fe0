"""One poll of the terminal's trading state, diffed against the last into changes.

MetaTrader5 has no push API, so the adapter reads positions, pending orders, the deals
since the last one seen, and the account, and compares them with what it announced
before: a position or order is new or changed by ticket and by its trading fields
(``time_update_msc``, volume, prices, levels); a revaluation at a new price only is
*floating*; a deal is new by ticket (the history is read from one second before the
last deal seen, so none is lost between polls, and de-duplicated, so none repeats); an
order that left ``orders_get``, or one behind a new deal, is read back from the history
for its final state. Positions and orders made outside fxgate (by hand, by an Expert
Advisor) are found the same way and belong to ``owner``.

The pure part, :meth:`Ledger.apply`, takes a :class:`Snapshot` and returns the changes
in the order they are announced: for each order, the order, its deals, the position
they touched; then the rest; then the account. It updates the ledger first, so that a
listener reading ``open_position`` during the deal's announcement sees the position.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fxgate.brokers.mt5 import convert
from fxgate.brokers.mt5.convert import Meta, Row
from fxgate.domain.money import ZERO, round_money
from fxgate.domain.trading import (
    Account,
    AccountMode,
    Deal,
    DealEntry,
    Order,
    OrderStatus,
    Position,
    PositionStatus,
)

Record = Order | Deal | Position | Account
#: A position to revalue: its ticket and ``(price_current, profit, swap)`` as read.
Revalue = tuple[int, tuple[Any, Any, Any]]
#: Closed positions and finished orders kept to answer the request that ended them.
_KEEP = 2000


@dataclass(slots=True)
class Snapshot:
    """What one poll read (plain dicts from the worker)."""

    account: Row
    terminal: Row
    positions: list[Row]
    orders: list[Row]
    deals: list[Row]
    #: history_orders_get(ticket=) answers for the tickets :meth:`Ledger.wanted` named.
    history: dict[int, Row] = field(default_factory=dict)


@dataclass(slots=True)
class Change:
    record: Record
    floating: bool = False


def _pos_key(row: Row) -> tuple[Any, ...]:
    return (row["volume"], row["price_open"], row.get("sl"), row.get("tp"), row["time_update_msc"])


def _order_key(row: Row) -> tuple[Any, ...]:
    return (
        row["volume_current"],
        row["price_open"],
        row.get("price_stoplimit"),
        row.get("sl"),
        row.get("tp"),
        row.get("state"),
        row.get("time_expiration"),
    )


def _levels(p: Position) -> tuple[Any, ...]:
    return (p.volume, p.open_price, p.stop_loss, p.take_profit)


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class Ledger:
    """The adapter's memory of the terminal's trading state (see the module docstring)."""

    def __init__(
        self, owner: str, digits: Callable[[str], int], clock: Callable[[], float]
    ) -> None:
        self.owner = owner
        self._digits = digits
        self._clock = clock
        self.currency = "USD"
        self.mode = AccountMode.HEDGING
        self.positions: dict[int, Position] = {}
        self.orders: dict[int, Order] = {}
        self.account: Account | None = None
        self.closed: OrderedDict[int, Position] = OrderedDict()
        self.finished: OrderedDict[int, Order] = OrderedDict()
        #: Order (= position) ticket → what fxgate knows of it beyond the terminal.
        self.meta: dict[int, Meta] = {}
        #: Comment token → meta, for an order whose ticket is not known yet.
        self.by_comment: dict[str, Meta] = {}
        self._pos_keys: dict[int, tuple[Any, ...]] = {}
        self._pos_raw: dict[int, tuple[Any, ...]] = {}
        self._order_keys: dict[int, tuple[Any, ...]] = {}
        self._deals: dict[int, float] = {}  # ticket -> time, the dedup window
        self.deal_cursor = 0.0
        self._commission: dict[int, Decimal] = {}
        self._realized: dict[int, Decimal] = {}

    # -- restoring from the store -------------------------------------------------------

    def restore(
        self,
        positions: Iterable[Position],
        orders: Iterable[Order],
        deals: Iterable[Deal],
        account: Account | None,
    ) -> None:
        """What fxgate announced before a restart: the first poll announces only what
        changed since (positions closed, deals made while it was away)."""
        for p in positions:
            self.positions[p.ticket] = p
            self._pos_keys[p.ticket] = ()
            self._commission[p.ticket] = p.commission
            self._realized[p.ticket] = p.realized_pnl
            self.meta.setdefault(p.ticket, Meta(None, p.strategy_id, p.connection_id, p.comment))
        for o in orders:
            self.orders[o.ticket] = o
            self._order_keys[o.ticket] = ()
            self.meta[o.ticket] = Meta(
                o.client_order_id, o.strategy_id, o.connection_id, o.comment, o.time_in_force
            )
        for d in deals:
            self._deals[d.ticket] = d.time
            self.deal_cursor = max(self.deal_cursor, d.time)
        self.account = account

    @property
    def primed(self) -> bool:
        return self.deal_cursor > 0

    def prime(self, now: float) -> None:
        """A first start: deals before now are history, not news."""
        self.deal_cursor = now

    # -- what a poll must read ----------------------------------------------------------

    def deals_since(self) -> float:
        return self.deal_cursor - 1.0

    def wanted(self, snap: Snapshot) -> set[int]:
        """Order tickets to read from the history: pending orders that left, and the
        orders behind new deals that fxgate has not seen finish."""
        pending = {int(r["ticket"]) for r in snap.orders}
        out = {t for t in self.orders if t not in pending}
        for d in snap.deals:
            t = int(d["ticket"])
            if t in self._deals or int(d["type"]) > 1:
                continue
            o = int(d["order"])
            if o not in pending and o not in self.finished:
                out.add(o)
        return out

    # -- the diff -------------------------------------------------------------------------

    def _meta(self, ticket: int, comment: Any) -> Meta | None:
        meta = self.meta.get(ticket)
        if meta is None and comment:
            meta = self.by_comment.pop(str(comment), None)
            if meta is not None:
                self.meta[ticket] = meta
        return meta

    def apply(self, snap: Snapshot, revalue: list[Revalue] | None = None) -> list[Change]:
        """The changes ``snap`` makes, in the order they are announced. With ``revalue``,
        the positions whose only change is their price are not revalued here but listed
        in it, for :meth:`revalue` to do a slice at a time (see :mod:`.session`)."""
        now = self._clock()
        acc = snap.account
        self.currency = str(acc.get("currency") or self.currency)
        cur = self.currency
        digits = self._digits

        # Deals first: they fix the orders' fills and the positions' money.
        new_deals: list[Deal] = []
        for row in sorted(snap.deals, key=lambda r: (r["time_msc"], r["ticket"])):
            t = int(row["ticket"])
            if t in self._deals:
                continue
            if int(row["type"]) > 1:  # balance, credit, ...: in the account, not a trade
                self._deals[t] = convert.secs(row["time_msc"])
                continue
            meta = self._meta(int(row["position_id"]), None) or self._meta(
                int(row["order"]), row.get("comment")
            )
            deal = convert.deal(row, self.owner, digits(str(row["symbol"])), cur, meta)
            self._deals[t] = deal.time
            self.deal_cursor = max(self.deal_cursor, deal.time)
            new_deals.append(deal)
            pt = deal.position_ticket
            self._commission[pt] = self._commission.get(pt, ZERO) + deal.commission
            if deal.entry is DealEntry.OUT:
                self._realized[pt] = self._realized.get(pt, ZERO) + deal.net
            else:
                self._realized[pt] = self._realized.get(pt, ZERO) + deal.commission + deal.swap
        self._prune()

        # Orders: pending ones new or changed, and those that finished.
        orders: list[Order] = []
        pending_rows = {int(r["ticket"]): r for r in snap.orders}
        for t, row in pending_rows.items():
            key = _order_key(row)
            if self._order_keys.get(t) == key:
                continue
            self._order_keys[t] = key
            meta = self._meta(t, row.get("comment"))
            o = convert.order(row, self.owner, digits(str(row["symbol"])), meta)
            if o != self.orders.get(t):
                self.orders[t] = o
                orders.append(o)
        done = [t for t in self.orders if t not in pending_rows]
        for t, row in snap.history.items():
            if t not in done and t in self.finished:
                continue
            meta = self._meta(t, row.get("comment"))
            fills = [d for d in new_deals if d.order_ticket == t]
            filled = sum((d.volume for d in fills), ZERO) if fills else None
            avg = None
            if fills and filled:
                px = sum((d.price * d.volume for d in fills), ZERO) / filled
                avg = convert.price(float(px), digits(str(row["symbol"])))
            o = convert.order(row, self.owner, digits(str(row["symbol"])), meta, average=avg)
            if filled is not None and o.status is not OrderStatus.FILLED:
                o = o.evolve(filled_volume=filled)
            self.orders.pop(t, None)
            self._order_keys.pop(t, None)
            self._remember(self.finished, t, o)
            orders.append(o)
        for t in done:  # left the terminal and not in its history: cancelled
            if t in snap.history:
                continue
            o = self.orders.pop(t)
            self._order_keys.pop(t, None)
            o = o.evolve(status=OrderStatus.CANCELLED, cancelled_at=now, updated_at=now)
            self._remember(self.finished, t, o)
            orders.append(o)

        # Positions: new or changed (trading), revalued (floating), closed.
        positions: list[Change] = []
        rows = {int(r["ticket"]): r for r in snap.positions}
        for t, row in rows.items():
            sym = str(row["symbol"])
            old = self.positions.get(t)
            key = _pos_key(row)
            before = self._pos_keys.get(t)
            raw = (row["price_current"], row.get("profit", 0), row.get("swap", 0))
            if old is not None and before == key:
                # The common case on every poll: no trading change, maybe a new price.
                # Compared raw first, so 200 unchanged positions cost 200 tuple compares.
                if self._pos_raw.get(t) == raw:
                    continue
                if revalue is not None:
                    revalue.append((t, raw))
                    continue
                c = self._revalue(t, raw, now)
                if c is not None:
                    positions.append(c)
                continue
            self._pos_raw[t] = raw
            meta = self._meta(t, row.get("comment"))
            p = convert.position(
                row,
                self.owner,
                digits(sym),
                cur,
                meta,
                self._commission.get(t, ZERO),
                self._realized.get(t, ZERO),
            )
            self._pos_keys[t] = key
            if before == () and old is not None and _levels(old) == _levels(p):
                # Restored from the store and unchanged but for the price: floating.
                p = old.evolve(
                    current_price=p.current_price, profit=p.profit, swap=p.swap, updated_at=now
                )
                self.positions[t] = p
                positions.append(Change(p, floating=True))
                continue
            if old is not None and p == old:
                continue
            self.positions[t] = p
            positions.append(Change(p))
        for t in [t for t in self.positions if t not in rows]:
            old = self.positions.pop(t)
            self._pos_keys.pop(t, None)
            self._pos_raw.pop(t, None)
            outs = [d for d in new_deals if d.position_ticket == t and d.entry is DealEntry.OUT]
            last = outs[-1] if outs else None
            closed = old.evolve(
                status=PositionStatus.CLOSED,
                closed_at=last.time if last else now,
                close_price=last.price if last else old.current_price,
                current_price=last.price if last else old.current_price,
                profit=ZERO,
                realized_pnl=self._realized.pop(t, old.realized_pnl),
                commission=self._commission.pop(t, old.commission),
                updated_at=last.time if last else now,
            )
            self._remember(self.closed, t, closed)
            positions.append(Change(closed))

        trading = bool(new_deals or orders or any(not c.floating for c in positions))
        account = self._account(acc, new_deals, now)
        changes = self._ordered(orders, new_deals, positions)
        if account is not None:
            prev, self.account = self.account, account
            floating = not trading and prev is not None and prev.balance == account.balance
            changes.append(Change(account, floating=floating))
        return changes

    def revalue(self, items: Iterable[Revalue]) -> list[Change]:
        """The floating changes of positions :meth:`apply` listed (those still open)."""
        now = self._clock()
        out = []
        for t, raw in items:
            c = self._revalue(t, raw, now)
            if c is not None:
                out.append(c)
        return out

    def _revalue(self, t: int, raw: tuple[Any, Any, Any], now: float) -> Change | None:
        old = self.positions.get(t)
        if old is None:
            return None
        self._pos_raw[t] = raw
        cur = self.currency
        fresh = (
            convert.price(raw[0], self._digits(old.symbol)),
            round_money(convert.dec(raw[1]), cur),
            round_money(convert.dec(raw[2]), cur),
        )
        if (old.current_price, old.profit, old.swap) == fresh:
            return None
        p = old.evolve(current_price=fresh[0], profit=fresh[1], swap=fresh[2], updated_at=now)
        self.positions[t] = p
        return Change(p, floating=True)

    def _ordered(
        self, orders: list[Order], deals: list[Deal], positions: list[Change]
    ) -> list[Change]:
        """For each order: it, its deals, the positions they touched; then the rest."""
        out: list[Change] = []
        left_deals = list(deals)
        left_pos = {c.record.ticket: c for c in positions if isinstance(c.record, Position)}
        for o in orders:
            out.append(Change(o))
            mine = [d for d in left_deals if d.order_ticket == o.ticket]
            for d in mine:
                left_deals.remove(d)
                out.append(Change(d))
            for t in dict.fromkeys(d.position_ticket for d in mine):
                c = left_pos.pop(t, None)
                if c is not None:
                    out.append(c)
        out.extend(Change(d) for d in left_deals)
        out.extend(left_pos.values())
        return out

    def _account(self, acc: Row, deals: list[Deal], now: float) -> Account | None:
        cur = self.currency
        old = self.account
        terms = convert.terms(acc)
        self.mode = terms.mode
        balance = round_money(convert.dec(acc["balance"]), cur)
        equity = round_money(convert.dec(acc["equity"]), cur)
        margin = round_money(convert.dec(acc.get("margin", 0)), cur)
        level = acc.get("margin_level") or 0
        today = _day(now)
        realized = sum((d.net for d in deals), ZERO)
        if old is None or old.day_start != today:
            day_start, day_equity = today, equity if old is None else old.equity
            day_realized = realized
        else:
            day_start, day_equity = old.day_start, old.day_start_equity
            day_realized = old.day_realized_pnl + realized
        new = Account(
            user_id=self.owner,
            currency=cur,
            leverage=terms.leverage,
            mode=terms.mode,
            balance=balance,
            equity=equity,
            created_at=old.created_at if old is not None else now,
            updated_at=now,
            day_start=day_start,
            day_start_equity=day_equity,
            margin=margin,
            free_margin=round_money(convert.dec(acc.get("margin_free", 0)), cur),
            margin_level=convert.dec(level).quantize(Decimal("0.01")) if margin and level else None,
            profit=round_money(convert.dec(acc.get("profit", 0)), cur),
            realized_pnl=(old.realized_pnl if old is not None else ZERO) + realized,
            day_realized_pnl=day_realized,
            margin_call=bool(margin and level and level < float(acc.get("margin_so_call") or 0)),
        )
        if old is not None and new.evolve(updated_at=old.updated_at) == old:
            return None
        return new

    def _remember(self, into: OrderedDict[int, Any], ticket: int, record: Any) -> None:
        into[ticket] = record
        while len(into) > _KEEP:
            into.popitem(last=False)

    def _prune(self) -> None:
        if len(self._deals) > 4 * _KEEP:
            floor = self.deal_cursor - 60
            self._deals = {t: ts for t, ts in self._deals.items() if ts >= floor}
