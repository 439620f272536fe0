"""The Broker port: what services need from a trading backend, paper or MetaTrader 5.

It is modelled on the MetaTrader5 Python package so that the MT5 adapter fits it
unchanged:

=====================================  ==================================================
port                                   MetaTrader5
=====================================  ==================================================
``symbols()``                          ``symbols_get()`` + ``symbol_info()``
``quote(symbol)``                      ``symbol_info_tick()``
``account(user_id)``                   ``account_info()``
``positions(user_id, symbol)``         ``positions_get(symbol=...)``
``orders(user_id, symbol)``            ``orders_get(symbol=...)`` (pending orders)
``deals(user_id, start, end)``         ``history_deals_get(date_from, date_to)``
``order_book(symbol)``                 ``market_book_add()`` + ``market_book_get()``
``place_order(user_id, request)``      ``order_send`` ``TRADE_ACTION_DEAL`` (market) or
                                       ``TRADE_ACTION_PENDING`` (limit, stop, stop-limit)
``modify_order(user_id, id, changes)`` ``order_send`` ``TRADE_ACTION_MODIFY``
``cancel_order(user_id, id)``          ``order_send`` ``TRADE_ACTION_REMOVE``
``close_position(user_id, ticket)``    ``order_send`` ``TRADE_ACTION_DEAL`` with ``position``
``modify_position(user_id, ticket)``   ``order_send`` ``TRADE_ACTION_SLTP``
=====================================  ==================================================

Failures are the domain errors of ``fxgate.domain.errors`` with seed 003's codes:
``ValidationError`` (bad volume, price, stops, unknown symbol), ``NotFoundError``
(unknown order or position, or one of another user: the two are not told apart),
``MarketClosedError``, ``InsufficientBalanceError`` (not enough free margin) and
``TradingError`` for the rest (no price yet, the broker refused). An MT5 adapter maps
``order_send`` return codes onto these.

Events: MetaTrader5 has no push API, so every adapter produces events itself (the MT5
adapter by polling and diffing, the paper broker from its matching engine) and hands
them, in the order they happened, to the listeners given to ``subscribe``. A trading
event (order, deal, position, account) is announced only after it is stored.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from fxgate.domain.market import Quote, SymbolSpec
from fxgate.domain.trading import (
    Account,
    Deal,
    Order,
    OrderBook,
    OrderChanges,
    OrderRequest,
    Position,
    Side,
)


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
    """A trading backend. All methods are coroutines; none blocks the event loop.

    Users are fxgate user ids: the paper broker keeps one account per user, the MT5
    adapter maps users onto its terminal's account(s). A method given a user only ever
    sees and touches that user's records.
    """

    name: str
    #: False while the backend cannot store or reach what it trades on (the health
    #: check reports the broker DEGRADED).
    healthy: bool

    async def start(self) -> None:
        """Connect (MT5) or restore state and start the market (paper)."""

    async def flush(self) -> None:
        """Return once every change made so far is stored and announced."""

    async def stop(self) -> None:
        """Stop producing events and release the connection; idempotent."""

    def subscribe(self, listener: BrokerListener) -> Callable[[], None]:
        """Register a listener for every event; returns a function that unregisters it."""
        ...

    async def symbols(self) -> Sequence[SymbolSpec]:
        """The tradable instruments with their specifications."""
        ...

    async def quote(self, symbol: str) -> Quote:
        """The latest tick of ``symbol``; ``ValidationError`` for an unknown symbol,
        ``TradingError`` when no price has arrived yet."""
        ...

    async def account(self, user_id: str) -> Account:
        """The user's account, with equity and margin at the latest prices."""
        ...

    async def positions(self, user_id: str, symbol: str | None = None) -> Sequence[Position]:
        """Open positions, oldest first."""
        ...

    async def orders(self, user_id: str, symbol: str | None = None) -> Sequence[Order]:
        """Pending (working) orders, oldest first."""
        ...

    async def deals(
        self, user_id: str, start: float | None = None, end: float | None = None
    ) -> Sequence[Deal]:
        """Deals with ``start <= time < end`` (epoch seconds; ``None`` is open-ended)."""
        ...

    async def order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        """Market depth, up to ``depth`` levels a side (synthetic on the paper broker)."""
        ...

    async def required_margin(
        self, user_id: str, symbol: str, side: Side, volume: Decimal, price: Decimal | None = None
    ) -> Decimal:
        """Margin that ``volume`` lots would need, in the account currency
        (MT5 ``order_calc_margin``); at the current price when ``price`` is ``None``."""
        ...

    async def place_order(self, user_id: str, request: OrderRequest) -> Order:
        """Place an order and return it as it stands after the broker's first answer:
        ``filled`` for a market order that filled, ``pending`` for a working order,
        ``cancelled`` for an IOC/FOK order that could not (fully) fill. Raises on rejection."""
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
        """Close a position at market, all of it or ``volume`` lots; returns its new state."""
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
