"""The fake terminal: one hedging account on fxgate's paper engine, behind MT5's API.

Prices come from ``fxgate.brokers.paper.feed.MarketSimulator`` and fills, margin,
stops and stop-outs from ``fxgate.brokers.paper.engine.PaperEngine``; this module only
translates between the package's calling conventions (dict requests, named tuples,
retcodes, ``last_error``) and the engine's domain objects, and keeps what the engine does
not: magic numbers, MT5 order types and filling modes, expiry, history records with
their own times. The market is advanced lazily: every call first catches the simulator
up to the clock ("pumps"), so ticks, fills and stop-outs happen between two calls, with
their own times, as they would in a live terminal between two polls.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fxgate.brokers.paper.engine import PaperEngine
from fxgate.brokers.paper.feed import MarketSimulator
from fxgate.brokers.paper.hours import make_hours
from fxgate.brokers.paper.results import EngineResult
from fxgate.config.settings import PaperSettings
from fxgate.domain.errors import (
    FxgateError,
    InsufficientBalanceError,
    MarketClosedError,
    NotFoundError,
    ValidationError,
)
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote, SymbolSpec
from fxgate.domain.trading import (
    Deal,
    DealEntry,
    Order,
    OrderChanges,
    OrderReason,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    order_id_for,
)

from . import _constants as c
from ._faults import Faults
from ._market import SymbolHistory
from ._records import TradeDeal, TradeOrder, TradePosition
from ._scenario import Scenario

USER = "mt5"

_TYPES: dict[tuple[OrderType, Side], int] = {
    (OrderType.MARKET, Side.BUY): c.ORDER_TYPE_BUY,
    (OrderType.MARKET, Side.SELL): c.ORDER_TYPE_SELL,
    (OrderType.LIMIT, Side.BUY): c.ORDER_TYPE_BUY_LIMIT,
    (OrderType.LIMIT, Side.SELL): c.ORDER_TYPE_SELL_LIMIT,
    (OrderType.STOP, Side.BUY): c.ORDER_TYPE_BUY_STOP,
    (OrderType.STOP, Side.SELL): c.ORDER_TYPE_SELL_STOP,
    (OrderType.STOP_LIMIT, Side.BUY): c.ORDER_TYPE_BUY_STOP_LIMIT,
    (OrderType.STOP_LIMIT, Side.SELL): c.ORDER_TYPE_SELL_STOP_LIMIT,
}
DOMAIN_TYPES = {v: k for k, v in _TYPES.items()}
_REASONS = {
    OrderReason.STOP_LOSS: c.DEAL_REASON_SL,
    OrderReason.TAKE_PROFIT: c.DEAL_REASON_TP,
    OrderReason.STOP_OUT: c.DEAL_REASON_SO,
}


@dataclass(slots=True)
class Extras:
    """What MT5 keeps about an order that the paper engine has no field for."""

    magic: int = 0
    reason: int = c.ORDER_REASON_EXPERT
    type_time: int = c.ORDER_TIME_GTC
    expiration: int = 0
    type_filling: int = c.ORDER_FILLING_RETURN
    comment: str = ""
    expired: bool = False


class Terminal:
    """The state behind the module's functions. Every public method holds ``lock``: the
    control server's thread and the adapter's worker may call at the same time."""

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.lock = threading.RLock()
        self.s = s = scenario if scenario is not None else Scenario()
        known = {spec.symbol: spec for spec in DEFAULT_SYMBOLS}
        base = known["EURUSD"]
        for i in range(1, s.synthetic_symbols + 1):
            name = f"EURUSD.s{i:02d}"
            known[name] = dataclasses.replace(base, symbol=name, description=f"Synthetic {i}")
        extra = [n for n in known if n not in {d.symbol for d in DEFAULT_SYMBOLS}]
        names = [*(s.symbols if s.symbols is not None else list(known)), *extra]
        names = list(dict.fromkeys(names))
        missing = [n for n in [*names, *s.market_watch] if n not in known]
        if missing:
            raise ValueError(f"fake MT5: unknown symbols {missing}; known: {sorted(known)}")
        self.specs: dict[str, SymbolSpec] = {n: known[n] for n in names}
        unknown = [n for n in s.trade_symbols if n not in self.specs]
        if unknown:
            raise ValueError(f"fake MT5: unknown trade_symbols {unknown}")
        self._trade_symbols = set(s.trade_symbols)
        self.selected: set[str] = {*s.market_watch, *extra}
        self.books: set[str] = set()
        self.faults = Faults()
        self.autotrading = s.autotrading
        self.initialized = False
        self.error: tuple[int, str] = (c.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
        self._offset = 0.0
        self._manual = s.clock == "manual"
        self._manual_now = s.start_time
        hours = make_hours(s.market_hours)
        self._hours = hours
        self._tickets = itertools.count(s.first_ticket)
        self.request_ids = itertools.count(1)
        settings = PaperSettings(
            initial_balance=Decimal(s.balance),
            currency=s.currency,
            leverage=s.leverage,
            commission_per_lot=Decimal(s.commission_per_lot),
            stop_out_level=Decimal(s.stop_out_level),
            margin_call_level=Decimal(s.margin_call_level),
        )
        specs = list(self.specs.values())
        self.feed = MarketSimulator(
            specs, seed=s.seed, hours=hours, clock=self.now, tick_rate=s.tick_rate
        )
        self.engine = PaperEngine(
            specs,
            settings,
            clock=self.now,
            next_ticket=self.next_ticket,
            is_open=self.is_open,
        )
        self.history: dict[str, SymbolHistory] = {
            n: SymbolHistory(spec.digits, s.max_ticks, f"{s.seed}:{n}")
            for n, spec in self.specs.items()
        }
        self.filling = {n: s.filling_modes.get(n, 3) for n in self.specs}
        self.trade_modes = {n: c.SYMBOL_TRADE_MODE_FULL for n in self.specs}
        self.extras: dict[int, Extras] = {}
        self.orders_done: dict[int, TradeOrder] = {}
        self.deals: dict[int, TradeDeal] = {}
        self.updated_msc: dict[int, int] = {}
        self.last_msc = 0
        self.context: Extras | None = None
        self.created = self.now()
        self.engine.open_account(USER)
        ticket = self.next_ticket()
        msc = self.stamp()
        self.deals[ticket] = TradeDeal(
            ticket, 0, msc // 1000, msc, c.DEAL_TYPE_BALANCE, c.DEAL_ENTRY_IN, 0, 0,
            c.DEAL_REASON_CLIENT, 0.0, 0.0, 0.0, 0.0, float(s.balance), 0.0, "", "Deposit", "",
        )  # fmt: skip
        if s.priced:
            for quote in self.feed.latest_all().values():
                self.apply_quote(quote)

    # -- clock and tickets -------------------------------------------------------------

    def now(self) -> float:
        return (self._manual_now if self._manual else time.time()) + self._offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._offset += seconds
            self.pump()

    def next_ticket(self) -> int:
        return next(self._tickets)

    def stamp(self) -> int:
        """A ``*_msc`` time for a change now: never equal to the previous one, so a
        poller that compares ``time_update_msc`` sees every change."""
        self.last_msc = max(int(self.now() * 1000), self.last_msc + 1)
        return self.last_msc

    def is_open(self, symbol: str, now: float) -> bool:
        return symbol not in self.faults.closed and self._hours.is_open(symbol, now)

    # -- the market --------------------------------------------------------------------

    def pump(self) -> None:
        """Catch the market up to the clock: ticks, fills, stops, expiries."""
        if self.s.random_ticks:
            for quote in self.feed.step(self.now()):
                self.apply_quote(quote)
        self.expire()

    def apply_quote(self, quote: Quote) -> None:
        h = self.history[quote.symbol]
        rose = quote.bid > h.last_bid > 0
        h.add(quote.ts, quote.bid, quote.ask)
        if quote.volume > 0 and quote.symbol in self._trade_symbols:
            step = float(self.specs[quote.symbol].volume_step)
            price = quote.ask if rose else quote.bid
            h.trade(quote.ts, price, round(quote.volume * step, 8), "buy" if rose else "sell")
        self.absorb(self.engine.on_quote(quote))

    def trade(self, symbol: str, price: float, volume: float, side: str) -> int:
        """One execution on the exchange now (a trade tick); returns its ``time_msc``."""
        with self.lock:
            self.pump()
            return self.history[symbol].trade(self.now(), price, volume, side)

    def set_price(self, symbol: str, bid: float, ask: float) -> None:
        with self.lock:
            self.pump()
            self.apply_quote(self.feed.set_quote(symbol, bid, ask, self.now()))

    def expire(self) -> None:
        now = self.now()
        for order in self.engine.orders(USER):
            ex = self.extras.get(order.ticket)
            timed = ex is not None and ex.expiration and ex.type_time != c.ORDER_TIME_GTC
            if ex is not None and timed and now >= ex.expiration:
                ex.expired = True
                self.absorb(self.engine.cancel_order(USER, order.id))

    # -- engine results into MT5 records ----------------------------------------------

    def absorb(self, result: EngineResult) -> None:
        for change in result.changes:
            if isinstance(change, Order):
                self._order_changed(change)
            elif isinstance(change, Deal):
                self._deal_made(change)
            elif isinstance(change, Position):
                self.updated_msc[change.ticket] = self.stamp()

    def _order_changed(self, order: Order) -> None:
        ex = self.extras.get(order.ticket)
        if ex is None:
            ex = self._extras_for_new(order)
            self.extras[order.ticket] = ex
        if not order.is_pending:
            self.orders_done[order.ticket] = self.order_record(order, done=True)

    def _extras_for_new(self, order: Order) -> Extras:
        """An order the engine created itself (a close, a stop loss) or one being placed
        now (``context``): its magic is the request's or the position's."""
        if order.reason is not OrderReason.CLIENT and order.position_ticket is not None:
            pos_ex = self.extras.get(order.position_ticket, Extras())
            return Extras(
                magic=pos_ex.magic,
                reason=_REASONS[order.reason],
                type_filling=c.ORDER_FILLING_FOK,
                comment=order.comment or "",
            )
        if self.context is not None:
            ctx = self.context
            return Extras(
                ctx.magic, ctx.reason, ctx.type_time, ctx.expiration, ctx.type_filling,
                ctx.comment,
            )  # fmt: skip
        return Extras(comment=order.comment or "")

    def _deal_made(self, deal: Deal) -> None:
        ex = self.extras.get(deal.order_ticket, Extras())
        msc = max(int(deal.time * 1000), 0)
        reason = _REASONS.get(
            deal.reason, ex.reason
        )  # the order's reason codes are the deal's for client/expert
        self.deals[deal.ticket] = TradeDeal(
            ticket=deal.ticket,
            order=deal.order_ticket,
            time=msc // 1000,
            time_msc=msc,
            type=c.DEAL_TYPE_BUY if deal.side is Side.BUY else c.DEAL_TYPE_SELL,
            entry=c.DEAL_ENTRY_IN if deal.entry is DealEntry.IN else c.DEAL_ENTRY_OUT,
            magic=ex.magic,
            position_id=deal.position_ticket,
            reason=reason,
            volume=float(deal.volume),
            price=float(deal.price),
            commission=float(deal.commission),
            swap=float(deal.swap),
            profit=float(deal.profit),
            fee=0.0,
            symbol=deal.symbol,
            comment=deal.comment or ex.comment,
            external_id="",
        )

    def order_record(self, order: Order, *, done: bool = False) -> TradeOrder:
        ex = self.extras.get(order.ticket, Extras())
        setup_msc = int(order.created_at * 1000)
        if order.type is OrderType.STOP_LIMIT:
            price_open, stoplimit = order.stop_price, order.price
        else:
            price_open, stoplimit = order.price or order.average_price, None
        prices = self.engine.prices(order.symbol)
        current = 0.0
        if prices is not None:
            current = float(prices.ask if order.side is Side.BUY else prices.bid)
        state = c.ORDER_STATE_PLACED
        done_msc = 0
        if done:
            done_msc = int((order.filled_at or order.cancelled_at or order.updated_at) * 1000)
            if order.status is OrderStatus.FILLED:
                state = c.ORDER_STATE_FILLED
            elif order.status is OrderStatus.REJECTED:
                state = c.ORDER_STATE_REJECTED
            elif ex.expired:
                state = c.ORDER_STATE_EXPIRED
            elif order.filled_volume > 0:
                state = c.ORDER_STATE_PARTIAL
            else:
                state = c.ORDER_STATE_CANCELED
            if order.average_price is not None:
                current = float(order.average_price)
        elif order.filled_volume > 0:
            state = c.ORDER_STATE_PARTIAL
        return TradeOrder(
            ticket=order.ticket,
            time_setup=setup_msc // 1000,
            time_setup_msc=setup_msc,
            time_done=done_msc // 1000,
            time_done_msc=done_msc,
            time_expiration=ex.expiration,
            type=_TYPES[(order.type, order.side)],
            type_time=ex.type_time,
            type_filling=ex.type_filling,
            state=state,
            magic=ex.magic,
            position_id=order.position_ticket or 0,
            position_by_id=0,
            reason=ex.reason,
            volume_initial=float(order.volume),
            volume_current=float(order.remaining_volume),
            price_open=float(price_open or 0),
            sl=float(order.stop_loss or 0),
            tp=float(order.take_profit or 0),
            price_current=current,
            price_stoplimit=float(stoplimit or 0),
            symbol=order.symbol,
            comment=ex.comment,
            external_id="",
        )

    def position_record(self, pos: Position) -> TradePosition:
        ex = self.extras.get(pos.ticket, Extras())
        opened = int(pos.opened_at * 1000)
        updated = self.updated_msc.get(pos.ticket, opened)
        return TradePosition(
            ticket=pos.ticket,
            time=opened // 1000,
            time_msc=opened,
            time_update=updated // 1000,
            time_update_msc=updated,
            type=c.POSITION_TYPE_BUY if pos.side is Side.BUY else c.POSITION_TYPE_SELL,
            magic=ex.magic,
            identifier=pos.ticket,
            reason=ex.reason if ex.reason <= c.POSITION_REASON_EXPERT else 0,
            volume=float(pos.volume),
            price_open=float(pos.open_price),
            sl=float(pos.stop_loss or 0),
            tp=float(pos.take_profit or 0),
            price_current=float(pos.current_price),
            swap=float(pos.swap),
            profit=float(pos.profit),
            symbol=pos.symbol,
            comment=ex.comment,
            external_id="",
        )

    # -- trading through the engine ----------------------------------------------------

    def run(self, ctx: Extras, call: Callable[[], EngineResult]) -> EngineResult:
        """Run one engine call with ``ctx`` naming the orders it creates."""
        self.context = ctx
        try:
            result = call()
            self.absorb(result)
        finally:
            self.context = None
        subject = result.subject
        if isinstance(subject, Order) and subject.ticket not in self.extras:
            self.extras[subject.ticket] = ctx
        return result

    def open_by_hand(
        self,
        symbol: str,
        side: str,
        volume: str,
        *,
        type: str = "market",
        price: str | None = None,
        stop_price: str | None = None,
        sl: str | None = None,
        tp: str | None = None,
        magic: int = 0,
        comment: str = "",
        reason: int = c.ORDER_REASON_CLIENT,
    ) -> int:
        """An order placed in the terminal by a person (reason CLIENT, magic 0) or by an
        Expert Advisor (``reason`` EXPERT with its own magic): returns its ticket, which
        is also the ticket of the position a market order opens."""
        with self.lock:
            self.pump()
            req = OrderRequest(
                symbol=symbol,
                type=OrderType(type),
                side=Side(side),
                volume=Decimal(volume),
                price=Decimal(price) if price is not None else None,
                stop_price=Decimal(stop_price) if stop_price is not None else None,
                stop_loss=Decimal(sl) if sl is not None else None,
                take_profit=Decimal(tp) if tp is not None else None,
                comment=comment or None,
            )
            ctx = Extras(magic=magic, reason=reason, comment=comment)
            result = self.run(ctx, lambda: self.engine.place_order(USER, req))
            assert isinstance(result.subject, Order)
            return result.subject.ticket

    def close_by_hand(self, ticket: int, volume: str | None = None) -> None:
        with self.lock:
            self.pump()
            pos = self.engine.position(USER, ticket)
            ex = self.extras.get(ticket, Extras())
            ctx = Extras(magic=ex.magic, reason=c.ORDER_REASON_CLIENT, comment="")
            amount = Decimal(volume) if volume is not None else None
            self.run(ctx, lambda: self.engine.close_position(USER, pos.ticket, amount))

    def cancel_by_hand(self, ticket: int) -> None:
        with self.lock:
            self.pump()
            self.run(Extras(), lambda: self.engine.cancel_order(USER, order_id_for(ticket)))


def retcode_for(exc: FxgateError) -> int:
    """The retcode a trade server answers for what the paper engine refused."""
    details = exc.details if isinstance(exc.details, dict) else {}
    field = details.get("field")
    reason = details.get("reason")
    if isinstance(exc, MarketClosedError):
        return c.TRADE_RETCODE_MARKET_CLOSED
    if isinstance(exc, InsufficientBalanceError):
        return c.TRADE_RETCODE_NO_MONEY
    if isinstance(exc, NotFoundError):
        return c.TRADE_RETCODE_INVALID
    if field == "volume":
        return c.TRADE_RETCODE_INVALID_VOLUME
    if field in ("stopLoss", "takeProfit") or reason == "invalid_stops":
        return c.TRADE_RETCODE_INVALID_STOPS
    if field in ("price", "stopPrice") or reason == "trigger_reached":
        return c.TRADE_RETCODE_INVALID_PRICE
    if reason == "no_price":
        return c.TRADE_RETCODE_PRICE_OFF
    if isinstance(exc, ValidationError):
        return c.TRADE_RETCODE_INVALID
    return c.TRADE_RETCODE_REJECT


def domain_changes(**kw: Any) -> OrderChanges:
    return OrderChanges(**kw)
