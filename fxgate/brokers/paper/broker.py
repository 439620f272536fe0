"""The paper broker: the pure matching engine, made durable and asynchronous.

Every engine call mutates memory at once (so matching stays a synchronous, per-tick
step) and returns what changed; the changes then go through one ordered pipeline that
stores them (several calls' changes in one transaction when they queue up) and only
then announces them to the listeners. A caller placing an order gets its answer after
the order is stored. Revaluations at a new price (floating P&L, equity) are not
trading records: they are conflated per position/account, announced at most every
``revalue_interval`` seconds and stored lazily; a restart recomputes them at the next
quote.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from fxgate.brokers.paper.engine import PaperEngine
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.brokers.paper.tape import TapeMaker
from fxgate.brokers.paper.tickets import TicketAllocator
from fxgate.domain.errors import NotFoundError, refused
from fxgate.domain.market import Quote, SymbolSpec
from fxgate.domain.trading import (
    Account,
    AccountTerms,
    Deal,
    Order,
    OrderBook,
    OrderChanges,
    OrderRequest,
    Position,
    Side,
)
from fxgate.services.ports.broker import (
    BrokerEvent,
    BrokerEventKind,
    BrokerListener,
    TapeListener,
)
from fxgate.services.ports.store.errors import StoreFencedError, StoreUnavailableError
from fxgate.services.ports.store.trading import TradingStore

log = logging.getLogger(__name__)

Record = Order | Deal | Position | Account
_KINDS: dict[type, BrokerEventKind] = {
    Order: BrokerEventKind.ORDER,
    Deal: BrokerEventKind.DEAL,
    Position: BrokerEventKind.POSITION,
    Account: BrokerEventKind.ACCOUNT,
}
_RETRIES = 3


def _key(record: Position | Account) -> tuple[str, object]:
    return ("p", record.ticket) if isinstance(record, Position) else ("a", record.user_id)


class PaperBroker:
    """The ``Broker`` port over the paper engine (see the module docstring)."""

    name = "paper"

    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        store: TradingStore,
        *,
        settings: PaperSettings | None = None,
        is_open: Callable[[str, float], bool] | None = None,
        clock: Callable[[], float] = time.time,
        revalue_interval: float = 0.25,
    ) -> None:
        self.store = store
        self.tickets = TicketAllocator(store)
        kwargs: dict[str, Any] = {"clock": clock, "next_ticket": self.tickets}
        if is_open is not None:
            kwargs["is_open"] = is_open
        self.engine = PaperEngine(specs, settings, **kwargs)
        self._listeners: list[BrokerListener] = []
        self._tape = TapeMaker(self.engine.specs)
        self._tape_listeners: list[TapeListener] = []
        self._quotes: dict[str, Quote] = {}
        # (records, waiter, announce): floating figures are stored through the same
        # queue, so a stale revaluation can never be written after a newer change.
        self._queue: asyncio.Queue[tuple[list[Record], asyncio.Future[None] | None, bool]] = (
            asyncio.Queue()
        )
        self._revalued: dict[tuple[str, object], Position | Account] = {}
        self._unsaved: dict[tuple[str, object], Position | Account] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.revalue_interval = revalue_interval
        self.healthy = True
        self.last_error: str | None = None
        #: Set once the store refused a write for good (a cluster node that lost the
        #: leader lease): nothing is written any more, each later write fails at once.
        self.fenced: StoreFencedError | None = None
        #: Records not stored since (counted, not logged one by one).
        self.refused = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.tickets.prime()
        accounts = await self.store.list_accounts()
        positions = await self.store.list_open_positions()
        orders = await self.store.list_pending_orders()
        self.engine.restore(accounts, positions, orders)
        expired = self.engine.expire_due().changes
        log.info(
            "paper broker restored",
            extra={"accounts": len(accounts), "positions": len(positions), "orders": len(orders)},
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._pipeline(), name="paper-pipeline"),
            loop.create_task(self._revaluations(), name="paper-revaluations"),
        ]
        await self._commit(expired)

    async def stop(self) -> None:
        # Let queued changes reach the store, then keep the latest floating figures.
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        unsaved, self._unsaved = self._unsaved, {}
        self._queue.put_nowait((list(unsaved.values()), done, False))
        try:
            await asyncio.wait_for(done, 5)
        except StoreFencedError:
            pass  # expected on a node that lost the lease: _save said so, once
        except (TimeoutError, StoreUnavailableError):
            log.error("paper broker stopped with unsaved changes")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def flush(self) -> None:
        """Return once every change made so far is stored and announced."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(([], done, True))
        await done

    def subscribe(self, listener: BrokerListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def subscribe_tape(self, listener: TapeListener) -> Callable[[], None]:
        """``BrokerTape``: the market's executions, made from the ticks (see tape.py)."""
        self._tape_listeners.append(listener)
        return lambda: self._tape_listeners.remove(listener)

    # -- reads -----------------------------------------------------------------------------

    async def symbols(self) -> Sequence[SymbolSpec]:
        return list(self.engine.specs.values())

    async def symbol(self, name: str) -> SymbolSpec:
        return self.engine.symbol(name)

    async def quote(self, symbol: str) -> Quote:
        self.engine.symbol(symbol)
        quote = self._quotes.get(symbol)
        if quote is None:
            raise refused(f"No price for {symbol} yet", "no_price", symbol=symbol)
        return quote

    async def account(self, user_id: str) -> Account:
        await self.ensure_account(user_id)
        return self.engine.account(user_id)

    async def account_terms(self, user_id: str) -> AccountTerms:
        # Every paper account opens on the settings' terms and keeps them.
        acc = await self.account(user_id)
        terms = self.engine.terms()
        if (acc.currency, acc.leverage, acc.mode) == (terms.currency, terms.leverage, terms.mode):
            return terms
        # Restored from a store written under other settings: the account's own terms.
        return replace(terms, currency=acc.currency, leverage=acc.leverage, mode=acc.mode)

    async def positions(self, user_id: str, symbol: str | None = None) -> Sequence[Position]:
        await self.ensure_account(user_id)
        return self.engine.positions(user_id, symbol)

    async def position(self, user_id: str, ticket: int) -> Position:
        return self.engine.position(user_id, ticket)

    def open_position(self, user_id: str, ticket: int) -> Position | None:
        try:
            return self.engine.position(user_id, ticket)
        except NotFoundError:
            return None

    async def orders(self, user_id: str, symbol: str | None = None) -> Sequence[Order]:
        await self.ensure_account(user_id)
        return self.engine.orders(user_id, symbol)

    async def deals(
        self, user_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> Sequence[Deal]:
        items, _ = await self.store.list_deals(user_id, start=start, end=end, limit=100_000)
        return items

    async def order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        return self.engine.order_book(symbol, depth)

    async def order_calc_margin(
        self, user_id: str, side: Side, symbol: str, volume: Decimal, price: Decimal | None = None
    ) -> Decimal:
        await self.ensure_account(user_id)
        return self.engine.calc_margin(user_id, side, symbol, volume, price)

    async def order_calc_profit(
        self,
        user_id: str,
        side: Side,
        symbol: str,
        volume: Decimal,
        price_open: Decimal,
        price_close: Decimal,
    ) -> Decimal:
        await self.ensure_account(user_id)
        return self.engine.calc_profit(user_id, side, symbol, volume, price_open, price_close)

    # -- trading ---------------------------------------------------------------------------

    async def ensure_account(self, user_id: str) -> None:
        """Open the user's paper account on first contact (stored before use)."""
        try:
            self.engine.account(user_id)
        except NotFoundError:
            await self._commit(self.engine.open_account(user_id).changes)

    async def place_order(self, user_id: str, request: OrderRequest) -> Order:
        await self.ensure_account(user_id)
        result = self.engine.place_order(user_id, request)
        await self._commit(result.changes)
        assert isinstance(result.subject, Order)
        return result.subject

    async def modify_order(self, user_id: str, order_id: str, changes: OrderChanges) -> Order:
        result = self.engine.modify_order(user_id, order_id, changes)
        await self._commit(result.changes)
        assert isinstance(result.subject, Order)
        return result.subject

    async def cancel_order(self, user_id: str, order_id: str) -> Order:
        result = self.engine.cancel_order(user_id, order_id)
        await self._commit(result.changes)
        assert isinstance(result.subject, Order)
        return result.subject

    async def close_position(
        self, user_id: str, ticket: int, volume: Decimal | None = None
    ) -> Position:
        result = self.engine.close_position(user_id, ticket, volume)
        await self._commit(result.changes)
        assert isinstance(result.subject, Position)
        return result.subject

    async def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> Position:
        result = self.engine.modify_position(user_id, ticket, stop_loss, take_profit)
        await self._commit(result.changes)
        assert isinstance(result.subject, Position)
        return result.subject

    def on_quote(self, quote: Quote) -> None:
        """A tick: fill and trigger what it crosses (announced after storing), and
        revalue open positions (announced a little later, conflated)."""
        if quote.symbol not in self.engine.specs:
            return
        self._quotes[quote.symbol] = quote
        if self._tape_listeners:
            trade = self._tape.on_quote(quote)
            if trade is not None:
                for tape_listener in self._tape_listeners:
                    tape_listener(trade)
        result = self.engine.on_quote(quote)
        if result.changes:
            self._submit(result.changes, None)
        for record in result.revalued:
            key = _key(record)
            self._revalued[key] = record
            self._unsaved[key] = record

    # -- the pipeline ----------------------------------------------------------------------

    async def _commit(self, changes: list[Record]) -> None:
        if not changes:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(changes, fut)
        await fut

    def _submit(self, changes: list[Record], fut: asyncio.Future[None] | None) -> None:
        # A trading change supersedes any pending revaluation of the same entity.
        for record in changes:
            if isinstance(record, Position | Account):
                key = _key(record)
                self._revalued.pop(key, None)
                self._unsaved.pop(key, None)
        self._queue.put_nowait((changes, fut, True))

    async def _pipeline(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():  # group commit what queued up meanwhile
                batch.append(self._queue.get_nowait())
            records = [r for changes, _, _ in batch for r in changes]
            error: Exception | None = None
            if records:
                error = await self._save(records)
            if error is None:
                for changes, _, announce in batch:
                    if announce:
                        for record in changes:
                            self._announce(record, floating=False)
            for _, fut, _ in batch:
                if fut is not None and not fut.done():
                    if error is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(error)

    async def _save(self, records: list[Record]) -> Exception | None:
        orders = [r for r in records if isinstance(r, Order)]
        deals = [r for r in records if isinstance(r, Deal)]
        positions = [r for r in records if isinstance(r, Position)]
        accounts = [r for r in records if isinstance(r, Account)]
        if self.fenced is not None:
            self.refused += len(records)
            return self.fenced
        for attempt in range(_RETRIES):
            try:
                await self.store.save(
                    orders=orders, deals=deals, positions=positions, accounts=accounts
                )
                self.healthy = True
                return None
            except StoreFencedError as exc:
                # Not a failure to retry or trace: this node may not write any more (the
                # node stops this broker on the lost lease). Said once, with the counts
                # and the fence that refused (the lease's clock, or the store's token).
                self.fenced = exc
                self.refused += len(records)
                self.last_error = str(exc)
                log.warning(
                    "lost the leader lease: trading writes refused, stopping the broker",
                    extra={
                        "orders": len(orders),
                        "deals": len(deals),
                        "positions": len(positions),
                        "accounts": len(accounts),
                        "queued": self._queue.qsize(),
                        "reason": str(exc),
                    },
                )
                return exc
            except Exception as exc:
                self.last_error = str(exc)
                log.exception("could not store trading records", extra={"attempt": attempt + 1})
                await asyncio.sleep(0.2 * 2**attempt)
        self.healthy = False
        return StoreUnavailableError("Trading records could not be stored; try again")

    def _announce(self, record: Record, *, floating: bool) -> None:
        event = BrokerEvent(_KINDS[type(record)], record, record.user_id, floating)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("broker listener failed")

    async def _revaluations(self) -> None:
        last_saved = time.monotonic()
        while True:
            await asyncio.sleep(self.revalue_interval)
            # The clock's tick: a GTD order on a quiet symbol expires on time too.
            expired = self.engine.expire_due().changes
            if expired:
                self._submit(expired, None)
            pending, self._revalued = self._revalued, {}
            for record in pending.values():
                self._announce(record, floating=True)
            if self._unsaved and time.monotonic() - last_saved >= 5.0:
                last_saved = time.monotonic()
                unsaved, self._unsaved = self._unsaved, {}
                self._queue.put_nowait((list(unsaved.values()), None, False))
