"""Request and response models of the trading endpoints (seed 003's shapes).

Amounts must be JSON numbers: a string where a quantity is expected is a client bug,
refused rather than guessed at. Floats are read through their shortest repr, so 0.1
is exactly ``Decimal("0.1")``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from fxgate.web.rest.models import JsonDecimal, PageQuery, QueryModel, RequestModel, ResponseModel


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    return value if isinstance(value, Decimal) else Decimal(repr(value))


# Each amount's schema is written out: the validator takes any number, and pydantic
# would document it as ``number|string`` with its own ``gt``/``le`` keys instead of
# JSON Schema's ``exclusiveMinimum``/``maximum``.

#: Prices and volumes have sane upper bounds: 1e300 is a typing error, not an order.
Positive = Annotated[
    Decimal,
    BeforeValidator(_number),
    Field(gt=0, le=10**9),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 10**9}),
]
Lots = Annotated[
    Decimal,
    BeforeValidator(_number),
    Field(gt=0, le=10**6),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 10**6}),
]
#: A stop loss or take profit; 0 removes it when modifying (MT5's convention).
StopLevel = Annotated[
    Decimal,
    BeforeValidator(_number),
    Field(ge=0, le=10**9),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 10**9}),
]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class OrderCreate(RequestModel):
    symbol: str = Field(min_length=1, max_length=20)
    type: Literal["market", "limit", "stop", "stop_limit"]
    side: Literal["buy", "sell"]
    quantity: Lots = Field(description="Lots, a multiple of the symbol's volume step.")
    price: Positive | None = Field(None, description="Limit price (limit, stop_limit).")
    stop_price: Positive | None = Field(None, description="Trigger (stop, stop_limit).")
    time_in_force: Literal["GTC", "IOC", "FOK", "GTD"] = "GTC"
    expires_at: str | None = Field(
        None,
        max_length=64,
        description="ISO 8601 (UTC when it names no zone): when a GTD pending order "
        "expires; only with timeInForce GTD, and in the future.",
        json_schema_extra={"format": "date-time"},
    )
    client_order_id: Ident | None = Field(
        None, description="Makes placement idempotent: the same id returns the first order."
    )
    stop_loss: Positive | None = None
    take_profit: Positive | None = None
    strategy_id: Ident | None = None
    connection_id: Ident | None = None
    comment: str | None = Field(None, max_length=64)


class OrderUpdate(RequestModel):
    quantity: Lots | None = None
    price: Positive | None = None
    stop_price: Positive | None = None
    stop_loss: StopLevel | None = None
    take_profit: StopLevel | None = None
    expires_at: str | None = Field(
        None,
        max_length=64,
        description="ISO 8601: a GTD order's new expiry, in the future.",
        json_schema_extra={"format": "date-time"},
    )


#: ``?account=<userId>``: whose account a trading endpoint acts on. Only admins may name
#: another user's (an MT5 terminal's owner, say); naming your own is the same as omitting it.
AccountParam = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=128,
        description="Act on this user's account instead of your own (admins only; "
        "your own id is always allowed).",
    ),
]


class AccountQuery(QueryModel):
    account: AccountParam = None


class AccountPageQuery(PageQuery):
    account: AccountParam = None


class OrdersQuery(AccountPageQuery):
    status: Literal["pending", "filled", "cancelled", "rejected", "expired"] | None = None
    symbol: str | None = Field(None, max_length=32)
    start_date: str | None = Field(
        None,
        max_length=64,
        description="ISO 8601; orders created at or after.",
        json_schema_extra={"format": "date-time"},
    )
    end_date: str | None = Field(
        None,
        max_length=64,
        description="ISO 8601; orders created before.",
        json_schema_extra={"format": "date-time"},
    )


class ClosePositionQuery(AccountQuery):
    # A query string is text: here "0.4" is the expected form, unlike in JSON bodies.
    volume: (
        Annotated[
            Decimal,
            Field(gt=0, le=10**6, allow_inf_nan=False),
            WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 10**6}),
        ]
        | None
    ) = Field(None, description="Lots to close; all when omitted.")


class PositionUpdate(RequestModel):
    stop_loss: StopLevel | None = None
    take_profit: StopLevel | None = None


class OrderOut(ResponseModel):
    id: str
    ticket: int
    symbol: str
    type: str
    side: str
    quantity: JsonDecimal
    price: JsonDecimal | None
    stop_price: JsonDecimal | None
    stop_loss: JsonDecimal | None
    take_profit: JsonDecimal | None
    time_in_force: str
    status: str
    filled_quantity: JsonDecimal
    average_price: JsonDecimal | None
    client_order_id: str | None
    strategy_id: str | None
    connection_id: str | None
    comment: str | None
    position_ticket: int | None
    reject_reason: str | None
    created_at: str
    updated_at: str
    filled_at: str | None
    cancelled_at: str | None
    expires_at: str | None


class CancelledOut(ResponseModel):
    id: str
    status: str
    cancelled_at: str | None


class PositionOut(ResponseModel):
    id: str
    ticket: int
    symbol: str
    side: Literal["long", "short"]
    quantity: JsonDecimal
    average_price: JsonDecimal
    current_price: JsonDecimal
    stop_loss: JsonDecimal | None
    take_profit: JsonDecimal | None
    unrealized_pn_l: JsonDecimal = Field(alias="unrealizedPnL")
    realized_pn_l: JsonDecimal = Field(alias="realizedPnL")
    commission: JsonDecimal
    swap: JsonDecimal
    margin_used: JsonDecimal
    status: Literal["open", "closed"]
    close_price: JsonDecimal | None
    strategy_id: str | None
    created_at: str
    updated_at: str
    closed_at: str | None


class PerformanceOut(ResponseModel):
    daily: float
    weekly: float
    monthly: float
    yearly: float


class PortfolioOut(ResponseModel):
    total_value: JsonDecimal
    available_balance: JsonDecimal
    balance: JsonDecimal
    equity: JsonDecimal
    margin_used: JsonDecimal
    margin_level: JsonDecimal | None
    unrealized_pn_l: JsonDecimal = Field(alias="unrealizedPnL")
    realized_pn_l: JsonDecimal = Field(alias="realizedPnL")
    total_pn_l: JsonDecimal = Field(alias="totalPnL")
    day_pn_l: JsonDecimal = Field(alias="dayPnL")
    positions: int
    open_orders: int
    currency: str
    leverage: int
    performance: PerformanceOut


class BalanceOut(ResponseModel):
    """Seed 004's ``getBalances``: one row per account currency (one, on MT5 accounts)."""

    currency: str
    total: JsonDecimal = Field(description="The balance: closed P&L included.")
    available: JsonDecimal = Field(description="Free margin: what new orders may use.")
    locked: JsonDecimal = Field(description="Margin held by open positions.")
    equity: JsonDecimal = Field(description="Balance plus floating P&L.")
    unrealized_pn_l: JsonDecimal = Field(alias="unrealizedPnL")
    updated_at: str


class DealOut(ResponseModel):
    ticket: int
    order_ticket: int
    position_ticket: int
    symbol: str
    side: str
    entry: str
    quantity: JsonDecimal
    price: JsonDecimal
    profit: JsonDecimal
    commission: JsonDecimal
    swap: JsonDecimal
    time: str
    strategy_id: str | None


class QuoteIn(RequestModel):
    symbol: str = Field(min_length=1, max_length=20)
    bid: Positive
    ask: Positive


class PublishEvent(RequestModel):
    channel: str = Field(min_length=1, max_length=64)
    data: dict[str, Any]
    user_id: str | None = Field(None, description="Required for per-user channels.")


class PublishBatch(RequestModel):
    events: list[PublishEvent] = Field(min_length=1, max_length=1000)


class PublishedOut(ResponseModel):
    published: int
