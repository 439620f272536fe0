"""The log lines of trading, for the ``logs`` channel: one method per thing a trader
sees happen to their account, each written once, with ids and codes in ``extra``.

Kept apart from :mod:`fxgate.services.trading` so that the order path reads as the
order path; the wording of a line a dashboard shows is this module's only concern.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fxgate.domain.errors import FxgateError
from fxgate.domain.trading import Deal, Order, OrderRequest, Position
from fxgate.services.activity import NoActivity
from fxgate.services.ports.activity import ActivityLog

MODULE = "trading"


class TradingLines:
    def __init__(self, activity: ActivityLog | None = None) -> None:
        self.activity: ActivityLog = activity or NoActivity()

    def placed(self, order: Order) -> None:
        self.activity.user(
            order.user_id,
            "INFO",
            f"Order placed: {order.symbol} {str(order.side).upper()} {order.volume} "
            f"({order.type}, {order.status})",
            MODULE,
            orderId=order.id,
            ticket=order.ticket or None,
            symbol=order.symbol,
            side=str(order.side),
            type=str(order.type),
            volume=str(order.volume),
            status=str(order.status),
            clientOrderId=order.client_order_id,
        )

    def rejected(self, user_id: str, request: OrderRequest, exc: FxgateError) -> None:
        reason = exc.details.get("reason") if isinstance(exc.details, Mapping) else None
        self.activity.user(
            user_id,
            "WARNING",
            f"Order rejected: {request.symbol} {str(request.side).upper()} {request.volume}: "
            f"{exc.message}",
            MODULE,
            symbol=request.symbol,
            side=str(request.side),
            type=str(request.type),
            volume=str(request.volume),
            code=str(exc.code),
            reason=reason if isinstance(reason, str) else None,
            clientOrderId=request.client_order_id,
        )

    def modified(self, order: Order, changes: Mapping[str, str]) -> None:
        self.activity.user(
            order.user_id,
            "INFO",
            f"Order modified: {order.symbol} {order.id}",
            MODULE,
            orderId=order.id,
            symbol=order.symbol,
            **changes,
        )

    def cancelled(self, order: Order) -> None:
        self.activity.user(
            order.user_id,
            "INFO",
            f"Order cancelled: {order.symbol} {order.id}",
            MODULE,
            orderId=order.id,
            symbol=order.symbol,
        )

    def closed(self, user_id: str, position: Position, volume: Decimal | None) -> None:
        self.activity.user(
            user_id,
            "INFO",
            f"Position closed: {position.symbol} #{position.ticket} ({volume or 'all'})",
            MODULE,
            ticket=position.ticket,
            symbol=position.symbol,
            volume=str(volume) if volume else "all",
        )

    def position_modified(
        self,
        user_id: str,
        position: Position,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
    ) -> None:
        self.activity.user(
            user_id,
            "INFO",
            f"Position modified: {position.symbol} #{position.ticket}",
            MODULE,
            ticket=position.ticket,
            symbol=position.symbol,
            stopLoss=str(stop_loss),
            takeProfit=str(take_profit),
        )

    def filled(self, deal: Deal) -> None:
        self.activity.user(
            deal.user_id,
            "INFO",
            f"Fill: {deal.symbol} {str(deal.side).upper()} {deal.volume} @ {deal.price} "
            f"({deal.entry})",
            MODULE,
            ticket=deal.ticket,
            order=deal.order_ticket,
            position=deal.position_ticket,
            symbol=deal.symbol,
            side=str(deal.side),
            entry=str(deal.entry),
            volume=str(deal.volume),
            price=str(deal.price),
            reason=str(deal.reason),
        )

    def risk_alert(self, user_id: str, alert: Mapping[str, Any]) -> None:
        self.activity.user(
            user_id,
            "ERROR" if alert.get("severity") == "CRITICAL" else "WARNING",
            f"Risk alert: {alert.get('message')}",
            "risk",
            alertId=alert.get("alertId"),
            type=alert.get("type"),
            severity=alert.get("severity"),
            threshold=alert.get("threshold"),
            current=alert.get("current"),
        )
