"""Orders, positions, deals and accounts: the records every broker produces and the store keeps.

The meanings follow MetaTrader 5, so that the MT5 adapter and the paper broker fill the
same types: on a hedging account a position's ``ticket`` is the ticket of the order that
opened it, a deal is one execution (its ticket is the trade's ``executionId``), and
money is ``Decimal`` in the account currency. Every record is a frozen snapshot; a change
is a new snapshot, which is what lets the broker hand them to the store and the channels
without copying. The store encodes them itself (``fxgate.store.codecs``) and the
presenters turn them into payloads: nothing here knows JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Self

from fxgate.domain.errors import invalid_field
from fxgate.domain.market import SymbolSpec
from fxgate.domain.money import ZERO, is_multiple

# ---------------------------------------------------------------------------------------
# Vocabulary


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell: profit is ``sign * (close - open)``."""
        return 1 if self is Side.BUY else -1


class TimeInForce(enum.StrEnum):
    """When the order's volume must be filled (MT5's filling modes in exchange words).

    GTC: what cannot be filled now waits (MT5 ``ORDER_FILLING_RETURN``); IOC: fill what
    is available, cancel the rest; FOK: fill all of it at once or nothing; GTD: a
    pending order that waits like GTC until its ``expires_at`` (MT5
    ``ORDER_TIME_SPECIFIED``), then expires.
    """

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"


class OrderStatus(enum.StrEnum):
    """Seed 003's four states.

    A pending order that has filled part of its volume stays ``pending`` (its
    ``filled_volume`` tells); an IOC order whose remainder was cancelled ends
    ``cancelled`` with a non-zero ``filled_volume``. A GTD order whose time passed ends
    ``expired`` (MT5 ``ORDER_STATE_EXPIRED``), which a client must tell from a cancel.
    """

    PENDING = "pending"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class OrderReason(enum.StrEnum):
    """Why an order or deal exists (MT5 ``ORDER_REASON``/``DEAL_REASON``)."""

    CLIENT = "client"
    STOP_LOSS = "sl"
    TAKE_PROFIT = "tp"
    STOP_OUT = "so"


class PositionStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class DealEntry(enum.StrEnum):
    """``in`` opens or adds to a position, ``out`` reduces or closes it."""

    IN = "in"
    OUT = "out"


class AccountMode(enum.StrEnum):
    """MT5's position accounting: hedging keeps one position per fill, netting one per symbol."""

    HEDGING = "hedging"
    NETTING = "netting"


def order_id_for(ticket: int) -> str:
    """The REST id of the order with ``ticket``.

    Derived rather than random so that any broker (the MT5 adapter included) gives the
    same order the same id, and a restart needs no extra mapping.
    """
    return f"ord_{ticket:x}"


def ticket_of_order_id(order_id: str) -> int | None:
    """The ticket behind a REST order id, or ``None`` when it is not one of ours."""
    if not order_id.startswith("ord_"):
        return None
    try:
        return int(order_id[4:], 16)
    except ValueError:
        return None


def position_id_for(ticket: int) -> str:
    return f"pos_{ticket:x}"


def check_volume(spec: SymbolSpec, volume: Decimal, field: str = "volume") -> None:
    """MT5's ``SYMBOL_VOLUME_MIN``/``MAX``/``STEP`` rules (retcode 10014, invalid volume)."""
    if not volume.is_finite() or volume <= 0:
        raise invalid_field(
            field, "Volume must be a positive number of lots", "not_positive", **_vd(spec)
        )
    if volume < spec.volume_min or volume > spec.volume_max:
        raise invalid_field(
            field,
            f"Volume {volume} is outside {spec.volume_min}..{spec.volume_max} lots",
            "out_of_range",
            **_vd(spec),
        )
    if not is_multiple(volume, spec.volume_step):
        raise invalid_field(
            field,
            f"Volume {volume} is not a multiple of the step {spec.volume_step}",
            "off_step",
            **_vd(spec),
        )


def _vd(spec: SymbolSpec) -> dict[str, str]:
    return {
        "symbol": spec.symbol,
        "volumeMin": str(spec.volume_min),
        "volumeMax": str(spec.volume_max),
        "volumeStep": str(spec.volume_step),
    }


# ---------------------------------------------------------------------------------------
# Snapshots


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class Snapshot:
    """Mixin for the frozen records below: a changed copy, fast.

    How a record is stored is the store's business (``fxgate.store.codecs``), and how
    it is shown the presenters'; the domain only describes it.
    """

    __slots__ = ()

    def evolve(self, **changes: Any) -> Self:
        """``dataclasses.replace`` without re-running ``__init__``: a third faster, which
        matters on the tick path, where every open position gets a new snapshot."""
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        new = object.__new__(cls)
        setattr_ = object.__setattr__
        for name in names:
            setattr_(new, name, changes[name] if name in changes else getattr(self, name))
        return new


# ---------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a client asks a broker to do; validated by risk checks and then by the broker.

    ``price`` is the limit price of limit and stop-limit orders and the trigger of a stop
    order; ``stop_price`` is the trigger of a stop-limit order (a stop order also accepts
    its trigger here). Market orders ignore both: they fill at the ask (buy) or bid (sell).
    """

    symbol: str
    type: OrderType
    side: Side
    volume: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = None
    strategy_id: str | None = None
    connection_id: str | None = None
    comment: str | None = None
    #: When a GTD order expires (tz-aware); only with ``time_in_force`` GTD.
    expires_at: datetime | None = None


def check_expiry(request: OrderRequest, now: float) -> float | None:
    """The epoch seconds a GTD request expires at, or ``None`` for any other; refuses an
    expiry that MT5 would (retcode 10022) before anything is sent or booked, so both
    brokers refuse the same requests with the same field."""
    at = request.expires_at
    gtd = request.time_in_force is TimeInForce.GTD
    if at is None:
        if gtd:
            raise invalid_field("expiresAt", "A GTD order needs expiresAt", "missing")
        return None
    if not gtd:
        raise invalid_field(
            "expiresAt",
            f"expiresAt needs timeInForce GTD, not {request.time_in_force}",
            "not_gtd",
        )
    if request.type is OrderType.MARKET:
        raise invalid_field("expiresAt", "Only pending orders can expire", "market_order")
    return _future(at, now)


def check_new_expiry(order: Order, at: datetime, now: float) -> float:
    """The epoch seconds a modified GTD order now expires at: only a GTD order has an
    expiry to move (a GTC order stays GTC, as its time in force cannot change)."""
    if order.time_in_force is not TimeInForce.GTD:
        raise invalid_field(
            "expiresAt",
            f"Only a GTD order has an expiry to change, not a {order.time_in_force} one",
            "not_gtd",
        )
    return _future(at, now)


def _future(at: datetime, now: float) -> float:
    if at.tzinfo is None or at.utcoffset() is None:
        raise invalid_field("expiresAt", "expiresAt needs a time zone", "no_time_zone")
    ts = at.timestamp()
    if ts <= now:
        raise invalid_field("expiresAt", "expiresAt is in the past", "in_the_past", now=_iso(now))
    return ts


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class OrderChanges:
    """A modification of a pending order; ``None`` leaves a field as it is.

    As in MT5, a stop loss or take profit of ``0`` removes it. ``volume`` is the new
    total volume and must stay above what has already been filled. ``expires_at`` moves
    a GTD order's expiry (tz-aware, in the future).
    """

    price: Decimal | None = None
    stop_price: Decimal | None = None
    volume: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    expires_at: datetime | None = None


# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class Order(Snapshot):
    """An order, pending or done. Closing a position is an order too, as in MT5.

    ``price`` is the limit price (limit, stop-limit) or the trigger (stop); ``stop_price``
    is the trigger of a stop-limit order (and repeats the trigger of a stop order);
    ``triggered_at`` is when a stop-limit order's trigger fired and it became a limit.
    ``position_ticket`` is the position the order opened, changed or closed.
    """

    id: str
    ticket: int
    user_id: str
    symbol: str
    type: OrderType
    side: Side
    volume: Decimal
    created_at: float
    updated_at: float
    price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    status: OrderStatus = OrderStatus.PENDING
    filled_volume: Decimal = ZERO
    average_price: Decimal | None = None
    client_order_id: str | None = None
    strategy_id: str | None = None
    connection_id: str | None = None
    comment: str | None = None
    filled_at: float | None = None
    cancelled_at: float | None = None
    triggered_at: float | None = None
    reject_reason: str | None = None
    position_ticket: int | None = None
    reason: OrderReason = OrderReason.CLIENT
    #: Epoch seconds a GTD order expires at (a float like every time of a record).
    expires_at: float | None = None

    @property
    def remaining_volume(self) -> Decimal:
        return self.volume - self.filled_volume

    @property
    def is_pending(self) -> bool:
        return self.status is OrderStatus.PENDING

    @property
    def mt5_type(self) -> str:
        """``BUY``, ``SELL_LIMIT``, ``BUY_STOP_LIMIT``...: seed 001's ``orderType``."""
        side = self.side.value.upper()
        if self.type is OrderType.MARKET:
            return side
        return f"{side}_{self.type.value.upper()}"


@dataclass(frozen=True, slots=True)
class Position(Snapshot):
    """An open (or, as the last snapshot, closed) position.

    ``profit`` is the floating profit at ``current_price`` (bid for a buy, ask for a
    sell) in the account currency; ``commission`` is what the position's deals have
    charged so far (negative, as MT5 signs it); ``realized_pnl`` is what the position has
    added to the balance so far: closed profit plus commission plus swap.
    """

    ticket: int
    user_id: str
    symbol: str
    side: Side
    volume: Decimal
    open_price: Decimal
    current_price: Decimal
    opened_at: float
    updated_at: float
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    profit: Decimal = ZERO
    swap: Decimal = ZERO
    commission: Decimal = ZERO
    margin: Decimal = ZERO
    closed_at: float | None = None
    close_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    status: PositionStatus = PositionStatus.OPEN
    strategy_id: str | None = None
    connection_id: str | None = None
    comment: str | None = None

    @property
    def id(self) -> str:
        return position_id_for(self.ticket)

    @property
    def is_open(self) -> bool:
        return self.status is PositionStatus.OPEN


@dataclass(frozen=True, slots=True)
class Deal(Snapshot):
    """One execution. ``profit`` is non-zero only on ``out`` deals.

    ``commission`` and ``swap`` are signed as in MT5: what the deal added to the balance,
    so a charge is negative. The balance changes by ``profit + commission + swap``.
    """

    ticket: int
    order_ticket: int
    position_ticket: int
    user_id: str
    symbol: str
    side: Side
    entry: DealEntry
    volume: Decimal
    price: Decimal
    time: float
    profit: Decimal = ZERO
    commission: Decimal = ZERO
    swap: Decimal = ZERO
    strategy_id: str | None = None
    connection_id: str | None = None
    reason: OrderReason = OrderReason.CLIENT
    comment: str | None = None

    @property
    def net(self) -> Decimal:
        return self.profit + self.commission + self.swap


@dataclass(frozen=True, slots=True)
class Account(Snapshot):
    """A trading account, as MT5's ``account_info`` describes it, plus the day's baseline.

    ``equity = balance + floating profit + swap``; ``free_margin = equity - margin``;
    ``margin_level = equity / margin * 100`` (``None`` with no margin in use).
    ``day_start`` is the UTC date (``YYYY-MM-DD``) whose start ``day_start_equity`` was
    taken at, so the day's P&L (realised plus floating) is ``equity - day_start_equity``.
    ``margin_call`` is set while the margin level is below the broker's margin-call level.
    """

    user_id: str
    currency: str
    leverage: int
    mode: AccountMode
    balance: Decimal
    equity: Decimal
    created_at: float
    updated_at: float
    day_start: str
    day_start_equity: Decimal
    margin: Decimal = ZERO
    free_margin: Decimal = ZERO
    margin_level: Decimal | None = None
    profit: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    day_realized_pnl: Decimal = ZERO
    margin_call: bool = False

    @property
    def day_pnl(self) -> Decimal:
        """Realised plus floating P&L since the start of the UTC day."""
        return self.equity - self.day_start_equity


@dataclass(frozen=True, slots=True)
class AccountTerms:
    """What an account trades on, as MT5's ``account_info`` states it.

    ``stop_out_level`` and ``margin_call_level`` are margin levels in percent (MT5
    ``margin_so_so``/``margin_so_call`` with ``ACCOUNT_STOPOUT_MODE_PERCENT``): below the
    first the broker closes positions, below the second it flags a margin call.
    ``initial_balance`` is the balance the account opened with, when the broker knows it
    (the paper broker does; an MT5 account has deposits instead: ``None``).
    """

    currency: str
    leverage: int
    mode: AccountMode
    stop_out_level: Decimal
    margin_call_level: Decimal
    initial_balance: Decimal | None = None


# ---------------------------------------------------------------------------------------
# Market depth


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    volume: Decimal  # lots


@dataclass(frozen=True, slots=True)
class OrderBook:
    """Depth of market (MT5 ``market_book_get``): best prices first on each side."""

    symbol: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    ts: float
