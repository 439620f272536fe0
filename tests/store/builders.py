"""Records for the contract suite: the broker's domain types with the fields that matter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fxgate.domain.trading import (
    Account,
    AccountMode,
    Deal,
    DealEntry,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Side,
)
from fxgate.services.ports.store import Store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> float:
    return (T0 + timedelta(minutes=minutes)).timestamp()


def order(
    order_id: str,
    user_id: str = "u1",
    *,
    minutes: float = 0,
    status: OrderStatus = OrderStatus.PENDING,
    symbol: str = "EURUSD",
    client_order_id: str | None = None,
    ticket: int = 0,
) -> Order:
    return Order(
        id=order_id,
        ticket=ticket,
        user_id=user_id,
        symbol=symbol,
        type=OrderType.LIMIT,
        side=Side.BUY,
        volume=Decimal("0.10"),
        price=Decimal("1.08512"),
        status=status,
        client_order_id=client_order_id,
        created_at=at(minutes),
        updated_at=at(minutes),
    )


def position(
    ticket: int, user_id: str = "u1", status: PositionStatus = PositionStatus.OPEN
) -> Position:
    return Position(
        ticket=ticket,
        user_id=user_id,
        symbol="EURUSD",
        side=Side.BUY,
        volume=Decimal("0.10"),
        open_price=Decimal("1.08500"),
        current_price=Decimal("1.08520"),
        opened_at=at(0),
        updated_at=at(0),
        status=status,
    )


def deal(ticket: int, user_id: str = "u1", *, minutes: float = 0) -> Deal:
    return Deal(
        ticket=ticket,
        order_ticket=ticket,
        position_ticket=ticket,
        user_id=user_id,
        symbol="EURUSD",
        side=Side.SELL,
        entry=DealEntry.OUT,
        volume=Decimal("0.10"),
        price=Decimal("1.08400"),
        time=at(minutes),
        profit=Decimal("-1.20"),
    )


def account(user_id: str, balance: str = "10000.00") -> Account:
    return Account(
        user_id=user_id,
        currency="USD",
        leverage=100,
        mode=AccountMode.HEDGING,
        balance=Decimal(balance),
        equity=Decimal(balance),
        created_at=at(0),
        updated_at=at(0),
        day_start="2024-03-01",
        day_start_equity=Decimal(balance),
    )


async def make_user(store: Store, email: str = "ann@example.com", **kw: Any) -> str:
    user = await store.users.create(email=email, name="Ann", role="trader", **kw)
    return user.id
