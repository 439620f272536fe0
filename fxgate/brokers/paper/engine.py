"""The paper broker's matching and accounting engine: pure, synchronous, clock injected.

No I/O and no asyncio, so that it can be tested to the cent and called on every tick; the
async broker around it persists each ``EngineResult`` and then announces it. Every
public method either raises a domain error having changed nothing, or returns what it
changed, in order.

Order handling (see ``matching.py`` for the crossing rules):

- A market order fills at once at the ask (buy) or bid (sell). A limit order whose price
  the market has already reached fills at once, at the market price; otherwise it waits.
  A stop or stop-limit whose trigger the market has already passed is refused.
- Time in force applies when an order becomes executable: at placement for market and
  limit orders, at the trigger for stop and stop-limit orders. An order takes at most the
  book's depth per quote (``PaperSettings.liquidity``): FOK fills all or is cancelled with
  nothing filled, IOC fills what there is and cancels the rest, GTC fills what there is
  and keeps the rest working (a market order's rest fills from the next quotes).
  An IOC or FOK limit order that is not marketable at once is cancelled.
- A stop-loss, take-profit or stop-out closes its position with a filled closing order,
  as MT5 does; closing always finds liquidity.
- Margin is checked when a fill would add exposure: a new order that cannot be covered is
  refused (``INSUFFICIENT_BALANCE_ERROR``); a working order that triggers without cover is
  ``rejected``. What a fill adds to the account's margin is what is checked, so an order
  that hedges an open position needs little or nothing (``margin.py``, hedged margin).
  A position's margin and floating profit follow every tick (current prices and
  conversion rates, as MT5 recomputes them).
- Stop-out: after each tick, while an account's margin level is below
  ``stop_out_level``, the position with the largest loss is closed.
- Market hours: placing, modifying and closing need an open market; cancelling does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

from fxgate.brokers.paper import matching
from fxgate.brokers.paper import validation as check
from fxgate.brokers.paper.accounting import Accounting
from fxgate.brokers.paper.book import synthetic_book
from fxgate.brokers.paper.execution import WAITING, Executor
from fxgate.brokers.paper.ledger import Ledger
from fxgate.brokers.paper.margin import (
    BidAsk,
    dependent_symbols,
    entry_price,
    exit_price,
    profit,
)
from fxgate.brokers.paper.results import EngineResult, Txn
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.domain import money
from fxgate.domain.errors import MarketClosedError, NotFoundError, invalid_field, refused
from fxgate.domain.market import Quote, SymbolSpec
from fxgate.domain.trading import (
    Account,
    AccountTerms,
    Order,
    OrderBook,
    OrderChanges,
    OrderReason,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    check_expiry,
    order_id_for,
)

#: ``is_open(symbol, now)``: the market-hours check (``hours.MarketHours.is_open``).
IsOpen = Callable[[str, float], bool]


def always_open(symbol: str, now: float) -> bool:
    return True


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class PaperEngine:
    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        settings: PaperSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        next_ticket: Callable[[], int],
        is_open: IsOpen = always_open,
    ) -> None:
        self._specs: dict[str, SymbolSpec] = {s.symbol: s for s in specs}
        self._settings = settings if settings is not None else PaperSettings()
        self._clock = clock
        self._next_ticket = next_ticket
        self._is_open = is_open
        self._ledger = Ledger()
        self._prices: dict[str, BidAsk] = {}
        self._acct = Accounting(
            self._specs, self._settings, self._ledger, self._prices, next_ticket
        )
        self._x = Executor(
            self._specs, self._settings, self._ledger, self._prices, self._acct, next_ticket
        )
        self._dependents: dict[str, set[str]] = {}
        self._currencies: set[str] = set()
        self._index_currency(self._settings.currency)
        self._day = -1
        self._rolled: set[str] = set()
        self._now = 0.0

    # -- reads ------------------------------------------------------------------------

    @property
    def specs(self) -> Mapping[str, SymbolSpec]:
        return self._specs

    @property
    def settings(self) -> PaperSettings:
        return self._settings

    def prices(self, symbol: str) -> BidAsk | None:
        return self._prices.get(symbol)

    def account(self, user_id: str) -> Account:
        acc = self._ledger.accounts.get(user_id)
        if acc is None:
            raise NotFoundError("No trading account", details={"userId": user_id})
        return acc

    def positions(self, user_id: str, symbol: str | None = None) -> list[Position]:
        return self._ledger.positions_of_user(user_id, symbol)

    def position(self, user_id: str, ticket: int) -> Position:
        pos = self._ledger.positions.get(ticket)
        if pos is None or pos.user_id != user_id:
            raise NotFoundError("Position not found", details={"ticket": ticket})
        return pos

    def orders(self, user_id: str, symbol: str | None = None) -> list[Order]:
        return self._ledger.orders_of_user(user_id, symbol)

    def order(self, user_id: str, order_id: str) -> Order:
        order = self._ledger.orders.get(order_id)
        if order is None or order.user_id != user_id:
            raise NotFoundError("No pending order with this id", details={"orderId": order_id})
        return order

    def order_book(self, symbol: str, depth: int | None = None) -> OrderBook:
        spec = self._spec(symbol)
        levels = self._settings.book_levels if depth is None else min(depth, 50)
        return synthetic_book(
            spec,
            self._require_prices(symbol),
            self._clock(),
            levels=max(levels, 1),
            level_volume=self._settings.book_level_volume,
        )

    def symbol(self, name: str) -> SymbolSpec:
        """The instrument's specification; ``ValidationError`` (field ``symbol``) if unknown."""
        return self._spec(name)

    def terms(self) -> AccountTerms:
        """The terms every paper account opens with."""
        s = self._settings
        return AccountTerms(
            currency=s.currency,
            leverage=s.leverage,
            mode=s.account_mode,
            stop_out_level=s.stop_out_level,
            margin_call_level=s.margin_call_level,
            initial_balance=money.round_money(s.initial_balance, s.currency),
        )

    def calc_margin(
        self, user_id: str, side: Side, symbol: str, volume: Decimal, price: Decimal | None = None
    ) -> Decimal:
        """MT5 ``order_calc_margin``: the margin ``volume`` lots would need now, open
        positions ignored."""
        acc = self.account(user_id)
        spec = self._spec(symbol)
        prices = self._require_prices(symbol)
        self._acct.check_rates(symbol, acc.currency)
        at = entry_price(side, prices) if price is None else money.round_price(price, spec.digits)
        return self._acct.margin(acc, symbol, side, volume, at)

    def calc_profit(
        self,
        user_id: str,
        side: Side,
        symbol: str,
        volume: Decimal,
        price_open: Decimal,
        price_close: Decimal,
    ) -> Decimal:
        """MT5 ``order_calc_profit``: in the account currency at current rates."""
        acc = self.account(user_id)
        spec = self._spec(symbol)
        self._acct.check_rates(symbol, acc.currency)
        return profit(
            spec,
            side,
            volume,
            money.round_price(price_open, spec.digits),
            money.round_price(price_close, spec.digits),
            acc.currency,
            self._prices,
        )

    # -- accounts and restart ----------------------------------------------------------

    def open_account(self, user_id: str) -> EngineResult:
        """Open the user's account on the settings' terms; a no-op if it exists."""
        tx, now = self._begin()
        existing = self._ledger.accounts.get(user_id)
        if existing is not None:
            return EngineResult(subject=existing)
        s = self._settings
        balance = money.round_money(s.initial_balance, s.currency)
        self._ledger.accounts[user_id] = Account(
            user_id=user_id,
            currency=s.currency,
            leverage=s.leverage,
            mode=s.account_mode,
            balance=balance,
            equity=balance,
            free_margin=balance,
            margin=money.round_money(money.ZERO, s.currency),
            profit=money.round_money(money.ZERO, s.currency),
            realized_pnl=money.round_money(money.ZERO, s.currency),
            day_realized_pnl=money.round_money(money.ZERO, s.currency),
            created_at=now,
            updated_at=now,
            day_start=utc_day(now),
            day_start_equity=balance,
        )
        tx.touch(user_id)
        result = self._finish(tx)
        result.subject = self._ledger.accounts[user_id]
        return result

    def restore(
        self, accounts: Iterable[Account], positions: Iterable[Position], orders: Iterable[Order]
    ) -> None:
        """Load state saved from earlier results (after a restart); closed positions and
        finished orders are skipped. Floating figures refresh at the next quotes."""
        for acc in accounts:
            self._ledger.accounts[acc.user_id] = acc
            self._index_currency(acc.currency)
        for pos in positions:
            if pos.is_open:
                self._need_account(pos.user_id)
                self._ledger.put_position(pos)
        for order in orders:
            if order.is_pending:
                self._need_account(order.user_id)
                self._ledger.put_order(order)
        self._day = -1

    def expire_due(self) -> EngineResult:
        """Expire every GTD order whose time has passed, whatever its symbol: the clock's
        tick, so that an order on a quiet symbol ends on time, and after a restore an
        order that expired while the daemon was down ends now, not at the next tick."""
        tx, now = self._begin()
        for order in [o for o in self._ledger.orders.values() if o.expires_at is not None]:
            if order.expires_at is not None and order.expires_at <= now:
                self._x.end(tx, order, OrderStatus.EXPIRED, "Expired")
        return self._finish(tx)

    # -- trading -----------------------------------------------------------------------

    def place_order(self, user_id: str, request: OrderRequest) -> EngineResult:
        tx, now = self._begin()
        acc = self.account(user_id)
        spec = self._spec(request.symbol)
        check.check_volume(spec, request.volume)
        expires_at = check_expiry(request, now)
        price, stop_price = check.order_prices(spec, request)
        sl = check.price_or_none(spec, request.stop_loss, "stopLoss")
        tp = check.price_or_none(spec, request.take_profit, "takeProfit")
        self._require_open(spec.symbol, now)
        prices = self._require_prices(spec.symbol)
        self._acct.check_rates(spec.symbol, acc.currency)
        reference = exit_price(request.side, prices) if price is None else price
        check.check_stops(spec, request.side, reference, sl, tp)
        if stop_price is not None:
            check.check_trigger_not_reached(request.side, stop_price, prices)
        ticket = self._next_ticket()
        order = Order(
            id=order_id_for(ticket),
            ticket=ticket,
            user_id=user_id,
            symbol=spec.symbol,
            type=request.type,
            side=request.side,
            volume=request.volume,
            created_at=now,
            updated_at=now,
            price=price,
            stop_price=stop_price,
            stop_loss=sl,
            take_profit=tp,
            time_in_force=request.time_in_force,
            client_order_id=request.client_order_id,
            strategy_id=request.strategy_id,
            connection_id=request.connection_id,
            comment=request.comment,
            expires_at=expires_at,
        )
        marketable = request.type is OrderType.MARKET or (
            request.type is OrderType.LIMIT and matching.limit_reached(order, prices)
        )
        if marketable:
            order = self._x.execute(tx, order, prices, placing=True)
        elif request.type is OrderType.LIMIT and request.time_in_force not in WAITING:
            order = self._x.end(tx, order, OrderStatus.CANCELLED, "Limit price not reachable now")
        else:
            self._ledger.put_order(order)
            tx.add(order)
        tx.subject = order
        return self._finish(tx)

    def modify_order(self, user_id: str, order_id: str, changes: OrderChanges) -> EngineResult:
        tx, now = self._begin()
        order = self.order(user_id, order_id)
        spec = self._specs[order.symbol]
        self._require_open(order.symbol, now)
        prices = self._require_prices(order.symbol)
        order = check.apply_changes(spec, order, changes, prices, now)
        if matching.executes_as_limit(order) and matching.limit_reached(order, prices):
            order = self._x.execute(tx, order, prices, placing=True)
        else:
            self._ledger.put_order(order)
            tx.add(order)
        tx.subject = order
        return self._finish(tx)

    def cancel_order(self, user_id: str, order_id: str) -> EngineResult:
        tx, _ = self._begin()
        order = self.order(user_id, order_id)
        tx.subject = self._x.end(tx, order, OrderStatus.CANCELLED, None)
        return self._finish(tx)

    def close_position(
        self, user_id: str, ticket: int, volume: Decimal | None = None
    ) -> EngineResult:
        tx, now = self._begin()
        pos = self.position(user_id, ticket)
        spec = self._specs[pos.symbol]
        amount = pos.volume if volume is None else volume
        if volume is not None:
            check.check_volume(spec, amount)
            if amount > pos.volume:
                raise invalid_field(
                    "volume",
                    f"The position has only {pos.volume} lots",
                    "exceeds_position",
                    positionVolume=str(pos.volume),
                )
            if 0 < pos.volume - amount < spec.volume_min:
                raise invalid_field(
                    "volume",
                    f"Closing {amount} lots would leave less than {spec.volume_min} lots open",
                    "remainder_below_minimum",
                    volumeMin=str(spec.volume_min),
                )
        self._require_open(pos.symbol, now)
        prices = self._require_prices(pos.symbol)
        self._acct.check_rates(pos.symbol, self.account(user_id).currency)
        price = exit_price(pos.side, prices)
        tx.subject = self._x.close(tx, pos, amount, price, OrderReason.CLIENT, None)
        return self._finish(tx)

    def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> EngineResult:
        """Set stop loss and take profit; ``None`` keeps a level, ``0`` removes it."""
        tx, now = self._begin()
        pos = self.position(user_id, ticket)
        spec = self._specs[pos.symbol]
        self._require_open(pos.symbol, now)
        prices = self._require_prices(pos.symbol)
        sl = (
            pos.stop_loss if stop_loss is None else check.price_or_none(spec, stop_loss, "stopLoss")
        )
        tp = (
            pos.take_profit
            if take_profit is None
            else check.price_or_none(spec, take_profit, "takeProfit")
        )
        check.check_stops(spec, pos.side, exit_price(pos.side, prices), sl, tp)
        pos = replace(pos, stop_loss=sl, take_profit=tp, updated_at=now)
        self._ledger.put_position(pos)
        tx.add(pos)
        tx.subject = pos
        return self._finish(tx)

    def on_quote(self, quote: Quote) -> EngineResult:
        """Revalue, fill what the new price reaches, hit stops, then stop out."""
        spec = self._specs.get(quote.symbol)
        if spec is None or not 0 < quote.bid <= quote.ask:
            return EngineResult()
        tx, _ = self._begin()
        prices = BidAsk(
            money.round_price(money.to_decimal(quote.bid), spec.digits),
            money.round_price(money.to_decimal(quote.ask), spec.digits),
        )
        symbol = spec.symbol
        self._prices[symbol] = prices
        self._x.tick(tx, symbol, prices, self._dependents.get(symbol, ()))
        return self._finish(tx)

    # -- internals ---------------------------------------------------------------------

    def _begin(self) -> tuple[Txn, float]:
        """Start a call: read the clock once, and roll the accounts into a new UTC day."""
        tx = Txn()
        now = self._now = self._x.now = self._clock()
        day = int(now // 86400)
        if day != self._day:
            self._day = day
            today = utc_day(now)
            for user_id, acc in list(self._ledger.accounts.items()):
                if acc.day_start != today:
                    self._ledger.accounts[user_id] = replace(
                        acc,
                        day_start=today,
                        day_start_equity=acc.equity,
                        day_realized_pnl=money.ZERO,
                    )
                    self._rolled.add(user_id)
        return tx, now

    def _finish(self, tx: Txn) -> EngineResult:
        for user_id in self._rolled:  # a roll is announced by the next call that succeeds
            tx.touch(user_id)
        self._rolled.clear()
        return tx.finish(lambda user_id: self._acct.refresh(user_id, self._now))

    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self._specs.get(symbol)
        if spec is None:
            raise invalid_field(
                "symbol",
                f"Unknown symbol {symbol!r}",
                "unknown_symbol",
                symbols=sorted(self._specs),
            )
        return spec

    def _require_prices(self, symbol: str) -> BidAsk:
        prices = self._prices.get(symbol)
        if prices is None:
            raise refused(f"No price for {symbol} yet", "no_price", symbol=symbol)
        return prices

    def _require_open(self, symbol: str, now: float) -> None:
        if not self._is_open(symbol, now):
            raise MarketClosedError(
                f"The {symbol} market is closed",
                details={"reason": "market_closed", "symbol": symbol},
            )

    def _need_account(self, user_id: str) -> None:
        if user_id not in self._ledger.accounts:
            raise ValueError(f"restore: no account for user {user_id!r}")

    def _index_currency(self, currency: str) -> None:
        if currency not in self._currencies:
            self._currencies.add(currency)
            for sym, dependents in dependent_symbols(self._specs, currency).items():
                self._dependents.setdefault(sym, set()).update(dependents)
