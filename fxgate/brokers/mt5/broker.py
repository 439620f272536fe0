"""The ``Broker`` port over a MetaTrader 5 terminal.

Two loops poll the terminal through its one worker (:mod:`.terminal`): ticks every
``mt5.poll_interval`` into the quote feed, and positions, orders, deals and account
every ``mt5.trade_poll_interval`` into :class:`~.sync.Ledger`, whose changes are stored
and then announced, exactly once. A trade (place, modify, cancel, close) holds the
same lock as a poll, sends its request, and polls at once, so that its answer is the
record the listeners were just told about.

Faults: a call that finds the terminal gone (IPC errors -10001..-10005, the bridge
lost, not logged in) turns the broker unhealthy, marks the quotes stale, and starts
reconnecting with capped exponential backoff; meanwhile trades are refused with a
``TRADING_ERROR`` (never queued). The first poll after reconnecting announces what
changed while the terminal was away, once. An ``order_send`` whose answer was lost is
never repeated: the terminal's orders and history are searched for the request's
comment token and ``magic`` first, and the order found is the answer.

One terminal is one account, owned by ``owner``: every record belongs to that user;
another user sees an empty account, finds no record, and may not trade
(``AUTHORIZATION_ERROR``). Admins are not special here: the port carries no role, and an
admin trades the account by naming its owner (REST's ``?account=``), so the calls that
reach this adapter carry ``owner``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fxgate.brokers.mt5 import convert, jobs
from fxgate.brokers.mt5.convert import Meta
from fxgate.brokers.mt5.feed import TickFeed, read_ticks
from fxgate.brokers.mt5.requests import (
    DONE,
    ORDER_TIME_GTC,
    ORDER_TIME_SPECIFIED,
    RETRIES,
    RETRY,
    TRADE_ACTION_DEAL,
    TRADE_ACTION_MODIFY,
    TRADE_ACTION_REMOVE,
    TRADE_ACTION_SLTP,
    error_for,
    filling,
    terminal_down,
    token,
    trade_request,
)
from fxgate.brokers.mt5.sync import Change, Ledger
from fxgate.brokers.mt5.terminal import Calls, Terminal, TerminalError
from fxgate.brokers.paper.margin import BidAsk, exit_price
from fxgate.brokers.paper.validation import (
    apply_changes,
    check_stops,
    check_trigger_not_reached,
    order_prices,
    price_or_none,
)
from fxgate.domain.errors import (
    AuthorizationError,
    NotFoundError,
    TradingError,
    invalid_field,
    refused,
)
from fxgate.domain.market import Quote, SymbolSpec
from fxgate.domain.money import ZERO, round_money
from fxgate.domain.trading import (
    Account,
    AccountTerms,
    Deal,
    Order,
    OrderBook,
    OrderChanges,
    OrderRequest,
    OrderType,
    Position,
    Side,
    TimeInForce,
    check_expiry,
    check_volume,
    ticket_of_order_id,
)
from fxgate.services.ports.broker import BrokerEvent, BrokerEventKind, BrokerListener
from fxgate.services.ports.store.errors import StoreUnavailableError
from fxgate.services.ports.store.records import Candle
from fxgate.services.ports.store.trading import TradingStore

log = logging.getLogger(__name__)

_KINDS: dict[type, BrokerEventKind] = {
    Order: BrokerEventKind.ORDER,
    Deal: BrokerEventKind.DEAL,
    Position: BrokerEventKind.POSITION,
    Account: BrokerEventKind.ACCOUNT,
}
ORDER_CALC = {Side.BUY: 0, Side.SELL: 1}  # ORDER_TYPE_BUY / SELL
#: fxgate's candle intervals → the package's TIMEFRAME_* values.
TIMEFRAMES = {"1m": 1, "5m": 5, "15m": 15, "1h": 16385, "4h": 16388, "1d": 16408}
#: How far back the history is searched for a request whose answer was lost.
_LOOKBACK = timedelta(hours=1)


class Mt5Broker:
    """See the module docstring. ``connect_kwargs`` go to ``initialize`` as they are."""

    name = "mt5"

    def __init__(
        self,
        terminal: Terminal,
        store: TradingStore,
        *,
        owner: str,
        symbols: Sequence[str] = (),
        connect_kwargs: dict[str, Any] | None = None,
        magic: int = 0,
        deviation: int = 10,
        poll_interval: float = 0.1,
        trade_poll_interval: float = 0.25,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        stale_after: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.terminal = terminal
        self.store = store
        self.owner = owner
        self._wanted = list(symbols)
        self._connect_kwargs = dict(connect_kwargs or {})
        self.magic = magic
        self.deviation = deviation
        self.poll_interval = poll_interval
        self.trade_poll_interval = trade_poll_interval
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._clock = clock
        self.feed = TickFeed(poll_interval, stale_after=stale_after, clock=clock)
        self._specs: dict[str, SymbolSpec] = {}
        self._infos: dict[str, dict[str, Any]] = {}
        self.ledger = Ledger(owner, self._digits, clock)
        self._listeners: list[BrokerListener] = []
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnecting: asyncio.Task[None] | None = None
        self.connected = False
        self.trade_allowed = True
        self.server_connected = True
        self.last_error: str | None = "not started"
        self._stopped = False
        self._unsaved: list[Change] = []

    # -- health --------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """False while the terminal is unreachable, not logged in, without its trade
        server, or AutoTrading is off."""
        return self.connected and self.trade_allowed and self.server_connected

    @property
    def health(self) -> str:
        """``DOWN`` while the terminal cannot be reached (or is not logged in);
        ``DEGRADED`` while it is up but cannot trade (AutoTrading off, no trade server)."""
        if not self.connected:
            return "DOWN"
        return "HEALTHY" if self.healthy else "DEGRADED"

    def _lost(self, exc: TerminalError) -> None:
        if self.connected:
            log.warning("mt5 terminal lost", extra={"code": exc.code, "error": exc.message})
        self.connected = False
        self.last_error = str(exc)
        self.feed.mark_stale()
        self.terminal.forget()
        if not self._stopped and (self._reconnecting is None or self._reconnecting.done()):
            self._reconnecting = asyncio.get_running_loop().create_task(
                self._reconnect(), name="mt5-reconnect"
            )

    async def _reconnect(self) -> None:
        delay = self.reconnect_min
        while not self._stopped:
            await asyncio.sleep(delay)
            try:
                await self._connect()
                async with self._lock:
                    await self._sync()
            except TerminalError as exc:
                self.connected = False
                self.last_error = str(exc)
                delay = min(delay * 2, self.reconnect_max)
                continue
            log.info("mt5 terminal reconnected")
            return

    async def _connect(self) -> None:
        kwargs, wanted = self._connect_kwargs, self._wanted
        term, acc, infos = await self.terminal.run(lambda c: jobs.connect(c, kwargs, wanted))
        self.ledger.currency = str(acc.get("currency") or "USD")
        for info in infos:
            spec = self._remember_symbol(info)
            self.feed.stream(spec, float(info.get("session_close") or 0.0))
        self.trade_allowed = bool(term.get("trade_allowed", True))
        self.server_connected = bool(term.get("connected", True))
        self.connected = True
        self.last_error = None

    def _remember_symbol(self, info: dict[str, Any]) -> SymbolSpec:
        spec = convert.symbol_spec(info)
        self._specs[spec.symbol] = spec
        self._infos[spec.symbol] = info
        return spec

    def _digits(self, symbol: str) -> int:
        spec = self._specs.get(symbol)
        return spec.digits if spec is not None else 5

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        positions = [p for p in await self.store.list_open_positions() if p.user_id == self.owner]
        orders = [o for o in await self.store.list_pending_orders() if o.user_id == self.owner]
        deals, _ = await self.store.list_deals(self.owner, limit=1000)
        account = next(
            (a for a in await self.store.list_accounts() if a.user_id == self.owner), None
        )
        self.ledger.restore(positions, orders, deals, account)
        if not self.ledger.primed:
            self.ledger.prime(self._clock())
        try:
            await self._connect()
            async with self._lock:
                await self._sync()
        except TerminalError as exc:
            log.error("mt5 terminal unavailable at start-up; reconnecting: %s", exc.message)
            self._lost(exc)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(poll_every(self.poll_interval, self._poll_ticks), name="mt5-ticks"),
            loop.create_task(
                poll_every(self.trade_poll_interval, self._poll_trades), name="mt5-trades"
            ),
        ]

    async def stop(self) -> None:
        self._stopped = True
        tasks = [*self._tasks, *([self._reconnecting] if self._reconnecting else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        if self.connected:
            with contextlib.suppress(TerminalError, TimeoutError):
                await asyncio.wait_for(self.terminal.call("shutdown"), 5)
        self.connected = False
        self.terminal.close()

    async def flush(self) -> None:
        """One tick poll and one trade poll, now."""
        await self._poll_ticks()
        await self._poll_trades()

    def subscribe(self, listener: BrokerListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- polling -------------------------------------------------------------------------

    async def _poll_ticks(self) -> None:
        if not self.connected:
            return
        cursors = self.feed.cursors
        try:
            ticks = await self.terminal.run(lambda c: read_ticks(c, cursors))
        except TerminalError as exc:
            if exc.lost:
                self._lost(exc)
            return
        self.feed.take(ticks)

    async def _poll_trades(self) -> None:
        if not self.connected:
            return
        async with self._lock:
            try:
                await self._sync()
            except TerminalError as exc:
                if exc.lost:
                    self._lost(exc)
                else:
                    log.warning("mt5 poll refused: %s", exc)

    async def _sync(self) -> None:
        """Read, diff, store, announce (the caller holds the lock)."""
        ledger = self.ledger
        since = ledger.deals_since()
        snap = await self.terminal.run(lambda c: jobs.read_state(c, since))
        wanted = ledger.wanted(snap)
        if wanted:
            snap.history = await self.terminal.run(lambda c: jobs.read_history(c, wanted))
        self.trade_allowed = bool(snap.terminal.get("trade_allowed", True))
        self.server_connected = bool(snap.terminal.get("connected", True))
        for row in [*snap.positions, *snap.orders, *snap.deals, *snap.history.values()]:
            sym = str(row.get("symbol") or "")
            if sym and sym not in self._specs:
                try:
                    self._remember_symbol(await self.terminal.call("symbol_info", sym))
                except TerminalError as exc:
                    if exc.lost:
                        raise
        # Changes a failed store write held back go first, in the order they happened.
        changes = [*self._unsaved, *ledger.apply(snap)]
        self._unsaved = changes
        await self._store([c.record for c in changes if not c.floating])
        self._unsaved = []
        for change in changes:
            self._announce(change)

    async def _store(self, records: list[Any]) -> None:
        """Store before announcing; a store that keeps failing holds the changes back
        (announced after the next successful write), never announced unstored."""
        if not records:
            return
        for attempt in range(3):
            try:
                await self.store.save(
                    orders=[r for r in records if isinstance(r, Order)],
                    deals=[r for r in records if isinstance(r, Deal)],
                    positions=[r for r in records if isinstance(r, Position)],
                    accounts=[r for r in records if isinstance(r, Account)],
                )
                return
            except Exception:
                log.exception("could not store mt5 trading records", extra={"attempt": attempt + 1})
                await asyncio.sleep(0.2 * 2**attempt)
        raise StoreUnavailableError("Trading records could not be stored; try again")

    def _announce(self, change: Change) -> None:
        r = change.record
        event = BrokerEvent(_KINDS[type(r)], r, r.user_id, change.floating)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("broker listener failed")

    # -- reads ---------------------------------------------------------------------------

    async def symbols(self) -> Sequence[SymbolSpec]:
        return list(self._specs.values())

    async def symbol(self, name: str) -> SymbolSpec:
        spec = self._specs.get(name)
        if spec is not None:
            return spec
        if not self.connected:
            raise terminal_down(self.last_error or "not connected")

        info = await self._run(lambda c: jobs.select(c, name))
        if info is None:
            raise invalid_field("symbol", f"Unknown symbol {name}", "unknown_symbol", symbol=name)
        return self._remember_symbol(info)

    async def quote(self, symbol: str) -> Quote:
        await self.symbol(symbol)
        q = self.feed.latest(symbol)
        if q is None:
            raise refused(f"No price for {symbol} yet", "no_price", symbol=symbol)
        return q

    async def _prices(self, symbol: str) -> BidAsk:
        """The current bid/ask, from the terminal (not the last poll)."""

        row = await self._run(lambda c: jobs.maybe(c, "symbol_info_tick", symbol))
        if not row or not row.get("bid") or not row.get("ask"):
            raise refused(f"No price for {symbol} yet", "no_price", symbol=symbol)
        d = self._digits(symbol)
        return BidAsk(convert.price(row["bid"], d), convert.price(row["ask"], d))

    async def _run(self, fn: Callable[[Calls], Any]) -> Any:
        """A call on behalf of a request: a lost terminal, or a call the package
        refused (``last_error()`` -2 invalid arguments, ...), is a TRADING_ERROR with the
        terminal's words, never an internal error."""
        if not self.connected:
            raise terminal_down(self.last_error or "not connected")
        try:
            return await self.terminal.run(fn)
        except TerminalError as exc:
            if exc.lost:
                self._lost(exc)
                raise terminal_down(exc.message) from None
            raise refused(
                f"The terminal refused the request: {exc.message}",
                "terminal_error",
                code=exc.code,
                terminal=exc.message,
            ) from None

    async def order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        await self.symbol(symbol)

        rows = await self._run(lambda c: jobs.book(c, symbol))
        return convert.order_book(symbol, rows, self._digits(symbol), depth, self._clock())

    async def candles(
        self,
        symbol: str,
        interval: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> Sequence[Candle]:
        """The terminal's own bars (bid prices, tick volume), for every interval."""
        await self.symbol(symbol)
        tf = TIMEFRAMES[interval]
        if not limit:
            return []

        rows = await self._run(lambda c: jobs.rates(c, symbol, tf, start, end, limit))
        bars = convert.candles(symbol, interval, rows, self._digits(symbol))
        if end is not None:
            bars = [b for b in bars if b.open_time < end]
        return bars[-limit:]

    def _mine(self, user_id: str) -> bool:
        return user_id == self.owner

    async def account(self, user_id: str) -> Account:
        acc = self.ledger.account
        if self._mine(user_id) and acc is not None:
            return acc
        now = self._clock()
        currency = acc.currency if acc is not None else self.ledger.currency
        # Not this terminal's owner (or nothing read yet): an empty account.
        return Account(
            user_id=user_id,
            currency=currency,
            leverage=acc.leverage if acc is not None else 1,
            mode=self.ledger.mode,
            balance=ZERO,
            equity=ZERO,
            created_at=now,
            updated_at=now,
            day_start=time.strftime("%Y-%m-%d", time.gmtime(now)),
            day_start_equity=ZERO,
        )

    async def account_terms(self, user_id: str) -> AccountTerms:
        acc = await self._run(lambda c: c("account_info"))
        return convert.terms(acc)

    async def positions(self, user_id: str, symbol: str | None = None) -> Sequence[Position]:
        if not self._mine(user_id):
            return []
        items = sorted(self.ledger.positions.values(), key=lambda p: (p.opened_at, p.ticket))
        return [p for p in items if symbol is None or p.symbol == symbol]

    async def position(self, user_id: str, ticket: int) -> Position:
        pos = self.open_position(user_id, ticket)
        if pos is None:
            raise NotFoundError("Position not found")
        return pos

    def open_position(self, user_id: str, ticket: int) -> Position | None:
        return self.ledger.positions.get(ticket) if self._mine(user_id) else None

    async def orders(self, user_id: str, symbol: str | None = None) -> Sequence[Order]:
        if not self._mine(user_id):
            return []
        items = sorted(self.ledger.orders.values(), key=lambda o: (o.created_at, o.ticket))
        return [o for o in items if symbol is None or o.symbol == symbol]

    async def deals(
        self, user_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> Sequence[Deal]:
        if not self._mine(user_id):
            return []
        items, _ = await self.store.list_deals(user_id, start=start, end=end, limit=100_000)
        return sorted(items, key=lambda d: (d.time, d.ticket))

    async def order_calc_margin(
        self, user_id: str, side: Side, symbol: str, volume: Decimal, price: Decimal | None = None
    ) -> Decimal:
        self._may_see(user_id)
        await self.symbol(symbol)
        px = price if price is not None else entry_price(side, await self._prices(symbol))
        args = (ORDER_CALC[side], symbol, float(volume), float(px))
        value = await self._calc("order_calc_margin", args)
        return round_money(convert.dec(value), self.ledger.currency)

    async def order_calc_profit(
        self,
        user_id: str,
        side: Side,
        symbol: str,
        volume: Decimal,
        price_open: Decimal,
        price_close: Decimal,
    ) -> Decimal:
        self._may_see(user_id)
        await self.symbol(symbol)
        args = (ORDER_CALC[side], symbol, float(volume), float(price_open), float(price_close))
        value = await self._calc("order_calc_profit", args)
        return round_money(convert.dec(value), self.ledger.currency)

    async def _calc(self, name: str, args: tuple[Any, ...]) -> Any:
        def calc(c: Calls) -> Any:
            try:
                return c(name, *args)
            except TerminalError as exc:
                if exc.lost:
                    raise
                return exc

        value = await self._run(calc)
        if isinstance(value, TerminalError):
            raise refused(f"The terminal cannot compute it: {value.message}", "no_price")
        return value

    # -- trading ---------------------------------------------------------------------------

    def _may_see(self, user_id: str) -> None:
        """Previews are the account's (its currency, leverage): the owner's only."""
        if not self._mine(user_id):
            raise AuthorizationError(
                "Only the owner of this MetaTrader 5 account may trade it",
                details={"reason": "not_account_owner"},
            )

    def _may_trade(self, user_id: str) -> None:
        self._may_see(user_id)
        if not self.connected:
            raise terminal_down(self.last_error or "not connected")

    async def place_order(self, user_id: str, request: OrderRequest) -> Order:
        self._may_trade(user_id)
        spec = await self.symbol(request.symbol)
        check_volume(spec, request.volume)
        expires_at = check_expiry(request, self._clock())
        price, stop = order_prices(spec, request)
        sl = price_or_none(spec, request.stop_loss, "stopLoss")
        tp = price_or_none(spec, request.take_profit, "takeProfit")
        prices = await self._prices(request.symbol)
        reference = exit_price(request.side, prices) if price is None else price
        check_stops(spec, request.side, reference, sl, tp)
        if stop is not None:
            check_trigger_not_reached(request.side, stop, prices)
        if not self.trade_allowed:
            raise error_for(10027, "AutoTrading disabled")
        tok = token(request.client_order_id)
        meta = Meta(
            request.client_order_id,
            request.strategy_id,
            request.connection_id,
            request.comment,
            request.time_in_force,
        )
        req = trade_request(
            request,
            price=price,
            stop_price=stop,
            market_price=float(entry_price(request.side, prices)),
            allowed_filling=int(self._infos.get(request.symbol, {}).get("filling_mode", 3)),
            magic=self.magic,
            deviation=self.deviation,
            comment=tok,
            expires_at=expires_at,
        )
        req["sl"], req["tp"] = float(sl or 0), float(tp or 0)
        market = request.type is OrderType.MARKET
        async with self._lock:
            self.ledger.by_comment[tok] = meta
            try:
                ticket = await self._send(req, tok, refresh=request.side if market else None)
            except TradingError as exc:
                if (exc.details or {}).get("reason") != "unknown_state":
                    self.ledger.by_comment.pop(tok, None)  # nothing to attribute later
                raise
            except Exception:
                self.ledger.by_comment.pop(tok, None)
                raise
            self.ledger.meta[ticket] = meta
            await self._sync()
        found = self.ledger.orders.get(ticket) or self.ledger.finished.get(ticket)
        if found is None:
            raise refused("The order was sent but the terminal does not show it", "not_found")
        return found

    async def _send(self, req: dict[str, Any], tok: str, *, refresh: Side | None = None) -> int:
        """``order_check``, then ``order_send`` (requotes retried, answers never lost):
        the ticket of the order the request made."""
        check = await self._run(lambda c: c("order_check", req))
        code = int(check.get("retcode", 0))
        if code not in DONE:
            raise error_for(code, str(check.get("comment", "")))
        for attempt in range(RETRIES + 1):
            try:
                result = await self.terminal.run(lambda c: c("order_send", req))
            except TerminalError as exc:
                return await self._after_lost_answer(exc, tok)
            code = int(result.get("retcode", 0))
            if code in DONE and code != 0:
                return int(result.get("order") or 0) or await self._after_lost_answer(None, tok)
            if code in RETRY and attempt < RETRIES and refresh is not None:
                req["price"] = float(entry_price(refresh, await self._prices(str(req["symbol"]))))
                continue
            raise error_for(code, str(result.get("comment", "")))
        raise error_for(10004, "requote")  # pragma: no cover - the loop always returns

    async def _after_lost_answer(self, exc: TerminalError | None, tok: str) -> int:
        """The request may or may not have executed: ask the terminal before answering."""
        if exc is not None and not exc.lost:
            raise refused(f"The terminal refused the request: {exc.message}", "invalid_request")
        if exc is not None:
            log.warning(
                "mt5 order_send answer lost; looking the order up", extra={"code": exc.code}
            )
        magic = self.magic
        try:
            ticket = await self.terminal.run(lambda c: jobs.find_request(c, tok, magic, _LOOKBACK))
        except TerminalError as lookup:
            if lookup.lost:
                self._lost(lookup)
            raise TradingError(
                "The terminal stopped answering while the order was sent; whether it was"
                " executed is not known yet. It will appear on the orders channel if it was;"
                " do not send it again before checking",
                details={"reason": "unknown_state", "terminal": lookup.message},
            ) from None
        if ticket is None:
            if exc is not None and exc.lost:
                self._lost(exc)
            raise terminal_down(exc.message if exc is not None else "no answer")
        return ticket

    def _order(self, user_id: str, order_id: str) -> Order:
        ticket = ticket_of_order_id(order_id)
        order = self.ledger.orders.get(ticket) if ticket is not None else None
        if order is None or not self._mine(user_id):
            raise NotFoundError("Order not found")
        return order

    def _position(self, user_id: str, ticket: int) -> Position:
        pos = self.open_position(user_id, ticket)
        if pos is None:
            raise NotFoundError("Position not found")
        return pos

    async def modify_order(self, user_id: str, order_id: str, changes: OrderChanges) -> Order:
        order = self._order(user_id, order_id)
        self._may_trade(user_id)
        spec = await self.symbol(order.symbol)
        if changes.volume is not None and changes.volume != order.volume:
            raise invalid_field(
                "volume",
                "MetaTrader 5 cannot change a pending order's volume; cancel it and place"
                " a new one",
                "not_supported",
            )
        prices = await self._prices(order.symbol)
        new = apply_changes(spec, order, changes, prices, self._clock())
        if new.type is OrderType.STOP_LIMIT:
            mt5_price, stoplimit = new.stop_price, new.price
        else:
            mt5_price, stoplimit = new.price, None
        req = {
            "action": TRADE_ACTION_MODIFY,
            "order": order.ticket,
            "symbol": order.symbol,
            "price": float(mt5_price or 0),
            "stoplimit": float(stoplimit or 0),
            "sl": float(new.stop_loss or 0),
            "tp": float(new.take_profit or 0),
            # MT5 takes the order's time anew on every modify: GTC would drop an expiry.
            "type_time": ORDER_TIME_GTC if new.expires_at is None else ORDER_TIME_SPECIFIED,
            "expiration": 0 if new.expires_at is None else int(new.expires_at),
            "magic": self.magic,
        }
        async with self._lock:
            await self._send_simple(req)
            await self._sync()
        return self.ledger.orders.get(order.ticket) or self.ledger.finished.get(order.ticket) or new

    async def cancel_order(self, user_id: str, order_id: str) -> Order:
        order = self._order(user_id, order_id)
        self._may_trade(user_id)
        req = {"action": TRADE_ACTION_REMOVE, "order": order.ticket, "magic": self.magic}
        async with self._lock:
            await self._send_simple(req)
            await self._sync()
        return self.ledger.finished.get(order.ticket) or self._order(user_id, order_id)

    async def close_position(
        self, user_id: str, ticket: int, volume: Decimal | None = None
    ) -> Position:
        pos = self._position(user_id, ticket)
        self._may_trade(user_id)
        spec = await self.symbol(pos.symbol)
        if volume is not None:
            check_volume(spec, volume)
            if volume > pos.volume:
                raise invalid_field(
                    "volume",
                    f"The position has only {pos.volume} lots",
                    "above_position",
                    positionVolume=str(pos.volume),
                )
        side = pos.side.opposite
        prices = await self._prices(pos.symbol)
        tok = token(None)
        req = {
            "action": TRADE_ACTION_DEAL,
            "magic": self.magic,
            "symbol": pos.symbol,
            "volume": float(volume if volume is not None else pos.volume),
            "price": float(entry_price(side, prices)),
            "deviation": self.deviation,
            "type": ORDER_CALC[side],
            "type_filling": filling(
                int(self._infos.get(pos.symbol, {}).get("filling_mode", 3)), TimeInForce.GTC, False
            ),
            "type_time": 0,
            "position": ticket,
            "comment": tok,
        }
        async with self._lock:
            self.ledger.by_comment[tok] = Meta(None, pos.strategy_id, pos.connection_id, None)
            await self._send(req, tok, refresh=side)
            await self._sync()
        return self.ledger.positions.get(ticket) or self.ledger.closed.get(ticket) or pos

    async def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> Position:
        pos = self._position(user_id, ticket)
        self._may_trade(user_id)
        spec = await self.symbol(pos.symbol)
        sl = pos.stop_loss if stop_loss is None else price_or_none(spec, stop_loss, "stopLoss")
        tp = (
            pos.take_profit
            if take_profit is None
            else price_or_none(spec, take_profit, "takeProfit")
        )
        prices = await self._prices(pos.symbol)
        check_stops(spec, pos.side, exit_price(pos.side, prices), sl, tp)
        req = {
            "action": TRADE_ACTION_SLTP,
            "symbol": pos.symbol,
            "position": ticket,
            "sl": float(sl or 0),
            "tp": float(tp or 0),
            "magic": self.magic,
        }
        async with self._lock:
            await self._send_simple(req)
            await self._sync()
        return self.ledger.positions.get(ticket) or self.ledger.closed.get(ticket) or pos

    async def _send_simple(self, req: dict[str, Any]) -> None:
        """A modification or removal: sent once; a lost answer is resolved by the poll
        that follows (sending it again would be harmless, but is not needed)."""
        try:
            result = await self.terminal.run(lambda c: c("order_send", req))
        except TerminalError as exc:
            if exc.lost:
                self._lost(exc)
                raise terminal_down(exc.message) from None
            raise refused(
                f"The terminal refused the request: {exc.message}", "invalid_request"
            ) from None
        code = int(result.get("retcode", 0))
        if code not in DONE or code == 0:
            raise error_for(code, str(result.get("comment", "")))


async def poll_every(interval: float, poll: Callable[[], Any]) -> None:
    """Poll at fixed deadlines: each poll starts ``interval`` after the previous one
    *started*, so the period does not grow by the poll's own time (and a tick's wait
    with it); a poll that overran its slot is followed by the next one at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + interval
    while True:
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        try:
            await poll()
        except Exception:
            log.exception("mt5 poll failed")
        deadline = max(deadline + interval, loop.time())


def entry_price(side: Side, prices: BidAsk) -> Decimal:
    """A buy executes at the Ask, a sell at the Bid."""
    return prices.ask if side is Side.BUY else prices.bid
