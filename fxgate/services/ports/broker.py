"""The Broker port: what services need from a trading backend, paper or MetaTrader 5.

Defined here, next to the services that use it (DESIGN.md: adapters implement ports that
services define); ``fxgate.brokers.*`` implement it. ``Broker`` is the only type the
services, the REST layer and the plugins see. It is modelled on the MetaTrader5 Python
package so that the MT5 adapter fits it unchanged:

======================================  ==================================================
port                                    MetaTrader5
======================================  ==================================================
``symbols()``                           ``symbols_get()`` + ``symbol_info()``
``symbol(name)``                        ``symbol_info(name)``
``quote(symbol)``                       ``symbol_info_tick()``
``account(user_id)``                    ``account_info()``
``account_terms(user_id)``              ``account_info()`` (leverage, currency,
                                        ``margin_so_so``, ``margin_so_call``,
                                        ``margin_mode``)
``positions(user_id, symbol)``          ``positions_get(symbol=...)``
``position(user_id, ticket)``           ``positions_get(ticket=...)``
``open_position(user_id, ticket)``      the adapter's memory of its last poll
``orders(user_id, symbol)``             ``orders_get(symbol=...)`` (pending orders)
``deals(user_id, start, end)``          ``history_deals_get(date_from, date_to)``
``order_book(symbol)``                  ``market_book_add()`` + ``market_book_get()``
``order_calc_margin(...)``              ``order_calc_margin(action, symbol, volume, price)``
``order_calc_profit(...)``              ``order_calc_profit(action, symbol, volume,
                                        price_open, price_close)``
``place_order(user_id, request)``       ``order_send`` ``TRADE_ACTION_DEAL`` (market) or
                                        ``TRADE_ACTION_PENDING`` (limit, stop, stop-limit)
``modify_order(user_id, id, changes)``  ``order_send`` ``TRADE_ACTION_MODIFY``
``cancel_order(user_id, id)``           ``order_send`` ``TRADE_ACTION_REMOVE``
``close_position(user_id, ticket)``     ``order_send`` ``TRADE_ACTION_DEAL`` with ``position``
``modify_position(user_id, ticket)``    ``order_send`` ``TRADE_ACTION_SLTP``
======================================  ==================================================

Sync or async: every call that MT5 answers with a round trip to the terminal (blocking)
is a coroutine here, so that the adapter can run it off the event loop. The only
synchronous reads are ``open_position`` and ``healthy``: values the adapter keeps current
in memory (the paper broker's ledger; the MT5 adapter's last poll), because the channel
payloads that need them are built on the hot path, where nothing may await.

What every adapter must guarantee (``tests/broker/test_conformance.py`` checks each):

- **Errors** are the domain errors of ``fxgate.domain.errors`` with seed 003's codes, in
  one shape (docs/rest.md, "Errors"): ``ValidationError`` when the request itself is
  malformed, with ``details["field"]`` naming the request field (``volume``, ``price``,
  ``stopPrice``, ``stopLoss``, ``takeProfit``, ``symbol``) and ``details["reason"]``;
  ``TradingError`` (``details["reason"]``) when a rule of the market or of the broker
  refuses a well-formed request (a buy stop below the ask, a stop loss on the wrong side
  of the price or inside the stops level, no price yet, MT5 retcodes 10006/10015/10016);
  ``NotFoundError`` for an unknown order or position *and* for one of another user (the
  two are never told apart); ``MarketClosedError`` (10018); ``InsufficientBalanceError``
  when the free margin does not cover the order (10019). An MT5 adapter maps
  ``order_send`` return codes onto these. A refused request changes nothing.
- **Tickets** follow MT5's hedging accounts: an order's ``ticket`` is unique; the position
  it opens has the *same* ticket; each deal has its own ticket, different from both (it
  is the trade's ``executionId``); ``Order.id`` is ``order_id_for(ticket)``, so the REST
  ``orderId`` maps to the ticket and back without a table.
- **Events**: MetaTrader5 has no push API, so every adapter produces events itself (the
  MT5 adapter by polling and diffing, the paper broker from its matching engine) and
  hands them to the listeners given to ``subscribe``, in the order they happened. A fill
  is announced as order, then deal, then position, then account; each trading change
  exactly once (a re-poll never repeats a deal); and only after it is stored, so that a
  listener may read it back. Revaluations at a new price are ``floating`` and may be
  conflated.
- **Users**: a method given a user only ever sees and touches that user's records.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from fxgate.domain.market import MarketTrade, Quote, SymbolSpec
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
from fxgate.services.ports.store.records import Candle


class BrokerEventKind(enum.StrEnum):
    QUOTE = "quote"
    ORDER = "order"
    DEAL = "deal"
    POSITION = "position"
    ACCOUNT = "account"


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    """Something changed at the broker. ``user_id`` is ``None`` only for quotes.

    ``data`` is the new snapshot: a ``Quote``, ``Order``, ``Deal``, ``Position`` or
    ``Account``. ``floating`` marks position and account snapshots whose only change is
    the revaluation at a new price (profit, equity, margin level): consumers may
    conflate those, but never trading changes.
    """

    kind: BrokerEventKind
    data: Quote | Order | Deal | Position | Account
    user_id: str | None = None
    floating: bool = False


#: Receives broker events on the event loop; it must not block (it should only enqueue).
BrokerListener = Callable[[BrokerEvent], None]


@runtime_checkable
class Broker(Protocol):
    """A trading backend. Reads and trades are coroutines; none blocks the event loop.

    Users are fxgate user ids: the paper broker keeps one account per user (opened on
    first contact), the MT5 adapter maps users onto its terminal's account(s).
    """

    name: str

    @property
    def healthy(self) -> bool:
        """False while the adapter cannot reach its backend or store (kept in memory)."""
        ...

    async def start(self) -> None:
        """Connect (MT5) or restore state and start the market (paper)."""

    async def stop(self) -> None:
        """Stop producing events and release the connection; idempotent."""

    async def flush(self) -> None:
        """Return once every change made so far is stored and announced (the MT5 adapter
        polls once): a barrier for callers that just moved the market."""

    def subscribe(self, listener: BrokerListener) -> Callable[[], None]:
        """Register a listener for every event; returns a function that unregisters it."""
        ...

    # -- instruments and prices ------------------------------------------------------

    async def symbols(self) -> Sequence[SymbolSpec]:
        """The tradable instruments with their specifications."""
        ...

    async def symbol(self, name: str) -> SymbolSpec:
        """One instrument's specification (MT5 ``symbol_info``); ``ValidationError``
        with ``details.field == "symbol"`` when the broker does not trade it."""
        ...

    async def quote(self, symbol: str) -> Quote:
        """The latest tick of ``symbol``; ``ValidationError`` (field ``symbol``) for an
        unknown symbol, ``TradingError`` when no price has arrived yet."""
        ...

    async def order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        """Market depth, up to ``depth`` levels a side (synthetic on the paper broker)."""
        ...

    # -- the account -----------------------------------------------------------------

    async def account(self, user_id: str) -> Account:
        """The user's account, with equity and margin at the latest prices."""
        ...

    async def account_terms(self, user_id: str) -> AccountTerms:
        """The terms the account trades on: currency, leverage, margin mode, stop-out and
        margin-call levels (MT5 ``account_info``), and the initial balance when the
        broker knows one (the paper broker does; MT5 does not: ``None``)."""
        ...

    async def order_calc_margin(
        self, user_id: str, side: Side, symbol: str, volume: Decimal, price: Decimal | None = None
    ) -> Decimal:
        """Margin that ``volume`` lots bought or sold at ``price`` would need, in the
        account currency at current rates (MT5 ``order_calc_margin``: open positions are
        ignored, so no hedging relief); at the current price when ``price`` is ``None``.
        ``ValidationError`` (field ``symbol``) for an unknown symbol, ``TradingError``
        when a price needed for it or its conversion is missing."""
        ...

    async def order_calc_profit(
        self,
        user_id: str,
        side: Side,
        symbol: str,
        volume: Decimal,
        price_open: Decimal,
        price_close: Decimal,
    ) -> Decimal:
        """Profit of ``volume`` lots opened at ``price_open`` and closed at
        ``price_close``, in the account currency at current rates (MT5
        ``order_calc_profit``); negative for a loss. Errors as ``order_calc_margin``."""
        ...

    # -- positions, orders, deals ----------------------------------------------------

    async def positions(self, user_id: str, symbol: str | None = None) -> Sequence[Position]:
        """Open positions, oldest first."""
        ...

    async def position(self, user_id: str, ticket: int) -> Position:
        """One open position (MT5 ``positions_get(ticket=)``); ``NotFoundError`` when it
        is unknown, closed, or another user's."""
        ...

    def open_position(self, user_id: str, ticket: int) -> Position | None:
        """The open position as the adapter last saw it, without a round trip (for
        payloads built on the hot path); ``None`` when it is not open or not the user's.
        Kept current by the adapter: it already holds the new position when it
        announces the deal that opened it."""
        ...

    async def orders(self, user_id: str, symbol: str | None = None) -> Sequence[Order]:
        """Pending (working) orders, oldest first."""
        ...

    async def deals(
        self, user_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> Sequence[Deal]:
        """Deals with ``start <= time < end`` (``None`` is open-ended), oldest first."""
        ...

    # -- trading ---------------------------------------------------------------------

    async def place_order(self, user_id: str, request: OrderRequest) -> Order:
        """Place an order and return it as it stands after the broker's first answer:
        ``filled`` for a market order that filled, ``pending`` for a working order,
        ``cancelled`` for an IOC/FOK order that could not (fully) fill. Raises on
        rejection (see the module's error rules), having changed nothing."""
        ...

    async def modify_order(self, user_id: str, order_id: str, changes: OrderChanges) -> Order:
        """Change a pending order's price, trigger, volume, stop loss or take profit."""
        ...

    async def cancel_order(self, user_id: str, order_id: str) -> Order:
        """Cancel a pending order; ``NotFoundError`` if it is unknown or no longer pending."""
        ...

    async def close_position(
        self, user_id: str, ticket: int, volume: Decimal | None = None
    ) -> Position:
        """Close a position at market, all of it or ``volume`` lots; returns its new state
        (``closed``, or open with the rest). The closing order gets a new ticket."""
        ...

    async def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> Position:
        """Set stop loss and take profit: ``None`` keeps a level, ``0`` removes it."""
        ...


@runtime_checkable
class BrokerCandles(Protocol):
    """A broker with its own price history (MT5 ``copy_rates_from_pos`` /
    ``copy_rates_range``): ``GET /market/data`` serves its bars instead of those fxgate
    recorded from the live quotes. Optional: the paper broker has none, and fxgate's
    recorder is its history."""

    async def candles(
        self,
        symbol: str,
        interval: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> Sequence[Candle]:
        """Bars of ``interval`` (``1m`` … ``1d``) with ``start <= open_time < end``,
        oldest first, at most ``limit`` (the latest ones)."""
        ...


@runtime_checkable
class BrokerHealth(Protocol):
    """A broker that can tell a degraded backend from one that is gone: the ``broker``
    health component reports ``health`` (``HEALTHY``, ``DEGRADED`` or ``DOWN``) instead
    of deriving it from ``healthy``. Optional: the MT5 adapter is ``DOWN`` while its
    terminal is unreachable and ``DEGRADED`` while AutoTrading is off or the terminal has
    lost its trade server (prices may still flow)."""

    @property
    def health(self) -> str: ...


#: Receives the market's executions on the event loop; it must not block.
TapeListener = Callable[[MarketTrade], None]


@runtime_checkable
class BrokerTape(Protocol):
    """A broker that reports the market's executions (seed 004's ``trades`` tape),
    not only its accounts' deals. Optional: the hub's ``market-trades`` channel is fed
    from every broker that has it.

    The paper broker makes its tape from its ticks and tick volumes
    (:mod:`fxgate.brokers.paper.tape`). The MT5 adapter makes it from the ticks it
    already sweeps (``copy_ticks_from(symbol, since, n, COPY_TICKS_ALL)``, which holds
    the trade ticks too; :mod:`fxgate.brokers.mt5.feed`): each tick with
    ``TICK_FLAG_LAST`` or ``TICK_FLAG_VOLUME`` is a trade at ``last`` of
    ``volume_real`` lots, bought with ``TICK_FLAG_BUY`` and sold with
    ``TICK_FLAG_SELL``, ``time_msc`` its time; a symbol whose server sends no trades
    (spot FX) has an empty tape."""

    def subscribe_tape(self, listener: TapeListener) -> Callable[[], None]:
        """Register a listener for every market execution; returns its unregister."""
        ...
