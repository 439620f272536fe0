"""The MT5 adapter's session with its terminal: construction, health, start and stop,
the two polling loops and reconnection (see :mod:`.broker` for the whole contract).

:class:`Mt5Session` holds the state every part of the adapter shares (the worker, the
feed, the ledger, the lock a poll and a trade take); :mod:`.reads` and :mod:`.broker`
build the port's methods on it.

A store that refuses a write for good (:class:`StoreFencedError`: a cluster node that
lost the leader lease, or whose token a newer leader's write superseded) means this
node no longer owns the terminal: the session says so once (a WARNING with the
reason), stops both loops and disconnects, as a node that never led; it does not retry
or reconnect, and refuses trades without calling the terminal. The new leader reads the
terminal itself, so nothing held back here is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from fxgate.brokers.mt5 import convert
from fxgate.brokers.mt5.feed import TickFeed
from fxgate.brokers.mt5.sync import Change, Ledger, Revalue, Snapshot
from fxgate.brokers.mt5.terminal import TerminalError, Worker
from fxgate.domain.market import SymbolSpec
from fxgate.domain.trading import (
    Account,
    Deal,
    Order,
    Position,
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

_KINDS: dict[type, BrokerEventKind] = {
    Order: BrokerEventKind.ORDER,
    Deal: BrokerEventKind.DEAL,
    Position: BrokerEventKind.POSITION,
    Account: BrokerEventKind.ACCOUNT,
}


class Mt5Session:
    """See the module docstring. ``connect_kwargs`` go to ``initialize`` as they are."""

    name = "mt5"

    def __init__(
        self,
        terminal: Worker,
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
        # One tick sweep at a time: a sweep reads the cursors the one before it moved
        # (``flush()`` beside the loop's sweep would otherwise read the same ticks twice).
        self._sweeping = asyncio.Lock()
        #: When the tick loop's next sweep is due (loop time), the trade polls waiting
        #: for a sweep to end, and how long the last trade poll kept the worker busy.
        self._next_sweep = float("-inf")
        self._after_sweep: list[asyncio.Future[None]] = []
        self._state_read = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnecting: asyncio.Task[None] | None = None
        self.connected = False
        self.trade_allowed = True
        self.server_connected = True
        self.last_error: str | None = "not started"
        self._stopped = False
        self._halting: asyncio.Task[None] | None = None
        self._unsaved: list[Change] = []
        #: Set once the store refused a write for good (the node lost the leader
        #: lease): the session has stopped and trades are refused from then on.
        self.fenced: StoreFencedError | None = None

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
            except StoreFencedError:
                return  # said once by _store, which stops the session
            log.info("mt5 terminal reconnected")
            return

    async def _connect(self) -> None:
        kwargs, wanted = self._connect_kwargs, self._wanted
        term, acc, infos = await self.terminal.run("connect", kwargs, wanted)
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
        except StoreFencedError:
            return  # not the leader any more: _store said so and is stopping the session
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(poll_every(self.poll_interval, self._poll_ticks), name="mt5-ticks"),
            loop.create_task(
                poll_every(self.trade_poll_interval, self._poll_trades), name="mt5-trades"
            ),
        ]

    async def stop(self) -> None:
        """Stop polling and disconnect; one stop however many callers (the node on a
        lost lease, and this session itself on a fenced write)."""
        await asyncio.shield(self._begin_stop())

    def _begin_stop(self) -> asyncio.Task[None]:
        self._stopped = True  # no poll, no reconnect from here on
        if self._halting is None:
            self._halting = asyncio.get_running_loop().create_task(self._halt(), name="mt5-stop")
        return self._halting

    async def _halt(self) -> None:
        tasks = [*self._tasks, *([self._reconnecting] if self._reconnecting else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        if self.connected:
            with contextlib.suppress(TerminalError, TimeoutError):
                await asyncio.wait_for(self.terminal.call("shutdown"), 5)
        self.connected = False
        await self.terminal.close()

    async def flush(self) -> None:
        """One tick poll and one trade poll, now."""
        await self._poll_ticks()
        await self._poll_trades()

    def subscribe(self, listener: BrokerListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def subscribe_tape(self, listener: TapeListener) -> Callable[[], None]:
        """``BrokerTape``: the trade ticks of the streamed symbols (see :mod:`.feed`)."""
        listeners = self.feed.tape_listeners
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    # -- polling -------------------------------------------------------------------------

    async def _poll_ticks(self) -> None:
        try:
            await self._sweep()
        finally:
            waiting, self._after_sweep = self._after_sweep, []
            for future in waiting:
                if not future.done():
                    future.set_result(None)

    async def _sweep(self) -> None:
        async with self._sweeping:
            self._next_sweep = asyncio.get_running_loop().time() + self.poll_interval
            if not self.connected or self._stopped:
                return
            states = list(self.feed.cursor_states().items())
            parts = [
                asyncio.ensure_future(
                    self.terminal.run("read_ticks", dict(states[i : i + SWEEP_PART]))
                )
                for i in range(0, len(states), SWEEP_PART)
            ]
            try:
                for part in parts:
                    try:
                        ticks, moved = await part
                    except TerminalError as exc:
                        if exc.lost:
                            self._lost(exc)
                        return
                    self.feed.take(ticks, moved)
            finally:
                for part in parts:  # after a failure (or a stop): the rest is not wanted
                    if part.done():
                        if not part.cancelled():
                            part.exception()  # retrieved: no "never retrieved" warning
                    else:
                        part.cancel()

    async def _poll_trades(self) -> None:
        if not self.connected or self._stopped:
            return
        await self._clear_of_sweeps()
        async with self._lock:
            if self._stopped:
                return
            try:
                await self._sync()
            except TerminalError as exc:
                if exc.lost:
                    self._lost(exc)
                else:
                    log.warning("mt5 poll refused: %s", exc)
            except StoreFencedError:
                pass  # this node lost the lease: _store said so, once, and stops the session

    async def _clear_of_sweeps(self) -> None:
        """Start a trade poll where it delays no tick sweep: the worker runs one job at a
        time, so a poll asked for just before a sweep made every tick of that sweep wait
        for the poll's calls (both loops were due together every other trade poll: the
        tail of ``bench/mt5.py``'s latency). While a sweep runs, or when the next one is
        due before the last trade poll's time has passed, it waits for that sweep's end
        (at most about one ``poll_interval``), then has the worker until the next."""
        loop = asyncio.get_running_loop()
        need = self._state_read + 0.002
        until_next = self._next_sweep - loop.time()
        if not (self._sweeping.locked() or -self.poll_interval < until_next < need):
            return
        future: asyncio.Future[None] = loop.create_future()
        self._after_sweep.append(future)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(future, min(self.poll_interval, 1.0) + need)

    async def _sync(self) -> None:
        """Read, diff, store, announce (the caller holds the lock)."""
        ledger = self.ledger
        since = ledger.deals_since()
        began = time.perf_counter()
        snap = Snapshot(**await self.terminal.run("read_state", since))
        took = time.perf_counter() - began
        # What the next trade poll needs the worker for (decaying, so one slow poll does
        # not keep it waiting, but a steady cost is remembered).
        self._state_read = max(took, 0.8 * self._state_read)
        wanted = ledger.wanted(snap)
        if wanted:
            snap.history = await self.terminal.run("read_history", list(wanted))
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
        revalue: list[Revalue] = []
        changes = [*self._unsaved, *ledger.apply(snap, revalue)]
        self._unsaved = changes
        await self._store([c.record for c in changes if not c.floating])
        self._unsaved = []
        # The account goes last, after the positions' revaluations, as it always did.
        account = changes.pop() if changes and isinstance(changes[-1].record, Account) else None
        for change in changes:
            self._announce(change)
        for i in range(0, len(revalue), REVALUE_SLICE):
            await asyncio.sleep(0)  # let the loop run between two slices
            for change in ledger.revalue(revalue[i : i + REVALUE_SLICE]):
                self._announce(change)
        if account is not None:
            self._announce(account)

    async def _store(self, records: list[Any]) -> None:
        """Store before announcing; a store that keeps failing holds the changes back
        (announced after the next successful write), never announced unstored."""
        if not records:
            return
        if self.fenced is not None:
            raise self.refusal()
        orders = [r for r in records if isinstance(r, Order)]
        deals = [r for r in records if isinstance(r, Deal)]
        positions = [r for r in records if isinstance(r, Position)]
        accounts = [r for r in records if isinstance(r, Account)]
        for attempt in range(3):
            try:
                await self.store.save(
                    orders=orders, deals=deals, positions=positions, accounts=accounts
                )
                return
            except StoreFencedError as exc:
                # Not a failure to retry or trace: this node may not write any more.
                # Said once, with the counts and the fence that refused, as the paper
                # broker says it.
                self.fenced = exc
                self.last_error = str(exc)
                log.warning(
                    "lost the leader lease: trading writes refused, stopping the broker",
                    extra={
                        "broker": self.name,
                        "orders": len(orders),
                        "deals": len(deals),
                        "positions": len(positions),
                        "accounts": len(accounts),
                        "reason": str(exc),
                    },
                )
                self._begin_stop()
                raise
            except Exception:
                log.exception("could not store mt5 trading records", extra={"attempt": attempt + 1})
                await asyncio.sleep(0.2 * 2**attempt)
        raise StoreUnavailableError("Trading records could not be stored; try again")

    def refusal(self) -> StoreFencedError:
        """What a trade gets once the store fenced this node off (the paper broker's
        answer too: ``SERVICE_UNAVAILABLE``), before any call to the terminal."""
        assert self.fenced is not None
        return StoreFencedError(f"this node no longer trades this account: {self.fenced}")

    def _announce(self, change: Change) -> None:
        r = change.record
        event = BrokerEvent(_KINDS[type(r)], r, r.user_id, change.floating)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("broker listener failed")


#: Positions revalued (and announced) per turn of the event loop. A price move revalues
#: nearly every open position at each trade poll; 200 of them (their Decimals, their
#: snapshots, their events and what the listeners do with them) took 2-4 ms of CPU in
#: one callback, the event loop's longest stalls in ``bench/mt5.py``. A slice of 25 is
#: a fraction of a millisecond, and the loop serves ticks and clients between two.
REVALUE_SLICE = 25

#: Symbols per part of a tick sweep. The parts are asked for at once and run in the
#: worker one after the other; each part's ticks go to the market service as soon as it
#: is back, so a tick waits for its own part, not for the whole sweep (with 30 symbols
#: the sweep's length added up to ~10 ms to the tail of the latency).
SWEEP_PART = 5


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
