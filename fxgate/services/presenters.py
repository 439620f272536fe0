"""Trading records as seed 001's channel payloads (and seed 002's ``account_update``).

One function per record, used by the channel plugins (once per event) and their
snapshots. Seed 001 shows commission as a positive cost where MT5 signs it negative,
and status names in upper case; money is a float at the account currency's digits.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from fxgate.domain.timefmt import iso_ms
from fxgate.domain.trading import (
    Account,
    Deal,
    Order,
    OrderBook,
    OrderType,
    Position,
    PositionStatus,
)


def num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def ts(value: float | None) -> str | None:
    return None if value is None else iso_ms(value)


def order_payload(o: Order) -> dict[str, Any]:
    """Seed 001 "Order Status Updates"; ``orderId`` is the REST id, ``ticket`` the MT5
    ticket shared with the trade and position the order opened."""
    return {
        "orderId": o.id,
        "ticket": o.ticket,
        "symbol": o.symbol,
        "orderType": o.mt5_type,
        "volume": float(o.volume),
        "price": num(o.price if o.type is not OrderType.MARKET else o.average_price),
        "stopPrice": num(o.stop_price),
        "stopLoss": num(o.stop_loss),
        "takeProfit": num(o.take_profit),
        "status": o.status.value.upper(),
        "timeInForce": str(o.time_in_force),
        "createdAt": ts(o.created_at),
        "updatedAt": ts(o.updated_at),
        "filledAt": ts(o.filled_at),
        "cancelledAt": ts(o.cancelled_at),
        "expiresAt": ts(o.expires_at),
        "fillPrice": num(o.average_price),
        "filledVolume": float(o.filled_volume),
        "remainingVolume": float(o.remaining_volume),
        "rejectReason": o.reject_reason,
        "clientOrderId": o.client_order_id,
        "strategyId": o.strategy_id,
        "connectionId": o.connection_id,
        "comment": o.comment,
        "reason": str(o.reason).upper(),
    }


def trade_payload(d: Deal, position: Position | None = None) -> dict[str, Any]:
    """Seed 001 "Trade Executions": a deal; ``ticket`` is its position's ticket and
    ``executionId`` the deal's own."""
    return {
        "executionId": str(d.ticket),
        "ticket": d.position_ticket,
        "orderTicket": d.order_ticket,
        "symbol": d.symbol,
        "action": d.side.value.upper(),
        "entry": d.entry.value.upper(),
        "volume": float(d.volume),
        "openPrice": float(d.price),
        "stopLoss": num(position.stop_loss) if position else None,
        "takeProfit": num(position.take_profit) if position else None,
        "profit": float(d.profit),
        "commission": float(-d.commission),
        "swap": float(d.swap),
        "status": "FILLED",
        "executedAt": iso_ms(d.time),
        "strategyId": d.strategy_id,
        "connectionId": d.connection_id,
    }


def position_payload(p: Position, account: Account | None) -> dict[str, Any]:
    """Seed 001 "Position Updates"; ``marginLevel`` is the account's."""
    now = time.time()
    end = p.closed_at if p.closed_at is not None else now
    closed = p.status is PositionStatus.CLOSED
    return {
        "ticket": p.ticket,
        "symbol": p.symbol,
        "type": p.side.value.upper(),
        "volume": float(p.volume),
        "openPrice": float(p.open_price),
        "currentPrice": float(p.close_price if closed and p.close_price else p.current_price),
        "stopLoss": num(p.stop_loss),
        "takeProfit": num(p.take_profit),
        "profit": float(p.profit),
        "unrealizedPnL": 0.0 if closed else float(p.profit),
        "realizedPnL": float(p.realized_pnl),
        "swap": float(p.swap),
        "commission": float(-p.commission),
        "margin": float(p.margin),
        "marginLevel": num(account.margin_level) if account else None,
        "duration": int(end - p.opened_at),
        "status": p.status.value.upper(),
        "openedAt": iso_ms(p.opened_at),
        "closedAt": ts(p.closed_at),
        "lastUpdate": iso_ms(p.updated_at),
        "strategyId": p.strategy_id,
        "connectionId": p.connection_id,
    }


def account_payload(a: Account) -> dict[str, Any]:
    """Seed 002's ``account_update`` fields, plus leverage, time and the day's P&L
    (``day_pnl``, realised plus floating since the UTC day began: seed 003's ``dayPnL``)."""
    return {
        "balance": float(a.balance),
        "equity": float(a.equity),
        "margin": float(a.margin),
        "free_margin": float(a.free_margin),
        "margin_level": num(a.margin_level),
        "profit": float(a.profit),
        "day_pnl": float(a.day_pnl),
        "currency": a.currency,
        "leverage": a.leverage,
        "timestamp": iso_ms(a.updated_at),
    }


def order_book_payload(book: OrderBook) -> dict[str, Any]:
    """Depth of market for the order-book channel (seed 004): ``[price, lots]`` string
    pairs, best first, so that no digit is lost to a float."""
    return {
        "symbol": book.symbol,
        "bids": [[str(lv.price), str(lv.volume)] for lv in book.bids],
        "asks": [[str(lv.price), str(lv.volume)] for lv in book.asks],
        "ts": book.ts,
    }
