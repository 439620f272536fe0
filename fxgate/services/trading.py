"""Trading: what every order goes through before and after the broker.

Before: the user's account exists, ``clientOrderId`` makes placement idempotent per
user, and the risk checks (free margin, volume, open positions, daily loss) run
whatever the broker. After: the broker's stored changes become channel events
(``orders trades positions account``), the day's loss is watched for ``RISK_LIMIT``
alerts (stored, then announced), every deal keeps the user's trade history in memory
current (``trade_history``), and every closed trade refreshes the user's analytics from
it. Every order, modification, cancellation and close is written to the audit log,
under the account's user, or under the admin who acted on it (``actor``) with the
account in ``details.account``; each of these, every fill and every risk alert is also
a line of the user's ``logs`` channel (``trading_lines``).

On a cluster node that lost the leader lease the store refuses the alert
(:class:`StoreFencedError`): that is the end of this node's term, not a failure. It is
said once (a WARNING with the reason, no traceback), and no alert is stored or announced
here from then on; the new leader's own monitor raises it, since it was never stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fxgate.domain.errors import FxgateError, NotFoundError
from fxgate.domain.events import Event
from fxgate.domain.trading import (
    Account,
    AccountMode,
    AccountTerms,
    Deal,
    DealEntry,
    Order,
    OrderChanges,
    OrderRequest,
    Position,
)
from fxgate.services import analytics
from fxgate.services.ports.activity import ActivityLog
from fxgate.services.ports.broker import Broker, BrokerEvent, BrokerEventKind
from fxgate.services.ports.store.audit import AuditLog
from fxgate.services.ports.store.errors import StoreFencedError
from fxgate.services.ports.store.trading import TradingStore
from fxgate.services.risk import DailyLossMonitor, RiskLimits, check_order
from fxgate.services.trade_history import TradeHistory
from fxgate.services.trading_lines import TradingLines
from fxgate.services.usage import UsageMeter

log = logging.getLogger(__name__)

_CHANNELS = {
    BrokerEventKind.ORDER: "orders",
    BrokerEventKind.DEAL: "trades",
    BrokerEventKind.POSITION: "positions",
    BrokerEventKind.ACCOUNT: "account",
}


class TradingService:
    def __init__(
        self,
        broker: Broker,
        store: TradingStore,
        publish: Callable[[Event], None],
        *,
        audit: AuditLog,
        limits: RiskLimits,
        spawn: Callable[..., Any],
        clock: Callable[[], float] = time.time,
        history_users: int = 1000,
        usage: UsageMeter | None = None,
        activity: ActivityLog | None = None,
    ) -> None:
        self.broker = broker
        #: The user's own log lines (the ``logs`` channel): orders, fills, refusals, alerts.
        self.lines = TradingLines(activity)
        self.store = store
        self.audit = audit
        self._publish = publish
        self._spawn = spawn
        self._clock = clock
        self.limits = limits
        #: Today's fills and refusals per user (seed 000's usage and success rate).
        self.usage = usage if usage is not None else UsageMeter(clock)
        self.loss_monitor = DailyLossMonitor(limits, clock=clock)
        # One lock per (user, clientOrderId) while requests for it are in flight.
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._accounts: dict[str, Account] = {}
        self._analytics_due: set[str] = set()
        #: Set once the store refused a risk alert for good (this node lost the lease).
        self.fenced: StoreFencedError | None = None
        self.history = TradeHistory(self.deals, max_users=history_users)
        broker.subscribe(self.on_broker_event)

    async def restore(self) -> None:
        """After a restart: remember today's risk alerts, so none is raised twice."""
        today = time.strftime("%Y-%m-%d", time.gmtime(self._clock()))
        seen: dict[str, int] = {}
        for owned in await self.store.list_all_alerts():
            alert = owned.doc
            if owned.user_id is None or alert.get("type") != "RISK_LIMIT":
                continue
            if str(alert.get("createdAt", ""))[:10] == today:
                level = int(alert.get("threshold", 0))
                seen[owned.user_id] = max(level, seen.get(owned.user_id, -1))
        for user_id, level in seen.items():
            self.loss_monitor.mark(user_id, today, level)

    # -- orders ------------------------------------------------------------------------

    async def place_order(
        self, user_id: str, request: OrderRequest, *, actor: str | None = None
    ) -> tuple[Order, bool]:
        """The order on ``user_id``'s account, and whether it was created now (False: an
        earlier order with the same ``clientOrderId``, returned as it is, with nothing new
        opened). ``actor``: the admin placing it on that account, for the audit log."""
        cid = request.client_order_id
        if cid is None:
            return await self._place(user_id, request, actor), True
        lock = self._locks.get((user_id, cid))
        if lock is None:
            lock = self._locks[(user_id, cid)] = asyncio.Lock()
        async with lock:
            existing = await self.store.get_order_by_client_id(user_id, cid)
            if existing is not None:
                return existing, False
            return await self._place(user_id, request, actor), True

    async def reannounce(
        self,
        user_id: str,
        order: Order,
        *,
        announced: Callable[[Event], Awaitable[bool]] | None = None,
    ) -> None:
        """Publish again what ``order`` changed: itself, its fills, its position and the
        account. For a trading leader that took over an order its predecessor stored but
        may have died before announcing. ``announced`` says which of those events went
        out already (they are skipped: no client sees one twice); without it, events are
        at least once in that window."""
        events = [Event("orders", order, user_id=user_id)]
        deals, _ = await self.store.list_deals(user_id, start=None, limit=1000)
        for deal in sorted(deals, key=lambda d: d.ticket):
            if deal.order_ticket == order.ticket:
                events.append(Event("trades", deal, user_id=user_id))
        if order.position_ticket is not None:
            position = self.broker.open_position(user_id, order.position_ticket)
            if position is not None:
                events.append(Event("positions", position, user_id=user_id))
        events.append(Event("account", await self.broker.account(user_id), user_id=user_id))
        for event in events:
            if announced is None or not await announced(event):
                self._publish(event)

    async def _place(self, user_id: str, request: OrderRequest, actor: str | None) -> Order:
        broker = self.broker
        spec = await broker.symbol(request.symbol)
        account = await broker.account(user_id)
        positions = await broker.positions(user_id)
        try:
            margin = await broker.order_calc_margin(
                user_id, request.side, request.symbol, request.volume, request.price
            )
        except (FxgateError, InvalidOperation):
            margin = Decimal(0)  # the broker's own checks will say what is wrong
        if hedges(request, account, positions):
            # order_calc_margin ignores open positions, and the relief a hedge gets is
            # the broker's to compute (MT5 publishes no algorithm): the broker checks it.
            margin = Decimal(0)
        try:
            check_order(
                request,
                spec=spec,
                account=account,
                positions=positions,
                required_margin=margin,
                limits=self.limits,
                now=self._clock(),
            )
            order = await broker.place_order(user_id, request)
        except FxgateError as exc:
            self.usage.rejection(user_id)
            await self._audit_for(
                user_id,
                actor,
                "order.rejected",
                request.symbol,
                code=str(exc.code),
                reason=exc.message,
            )
            self.lines.rejected(user_id, request, exc)
            raise
        await self._audit_for(
            user_id,
            actor,
            "order.place",
            order.id,
            symbol=order.symbol,
            side=str(order.side),
            type=str(order.type),
            volume=str(order.volume),
            status=str(order.status),
            clientOrderId=order.client_order_id,
        )
        self.lines.placed(order)
        return order

    async def modify_order(
        self, user_id: str, order_id: str, changes: OrderChanges, *, actor: str | None = None
    ) -> Order:
        order = await self.broker.modify_order(user_id, order_id, changes)
        await self._audit_for(user_id, actor, "order.modify", order_id, **_changes(changes))
        self.lines.modified(order, _changes(changes))
        return order

    async def cancel_order(self, user_id: str, order_id: str, *, actor: str | None = None) -> Order:
        order = await self.broker.cancel_order(user_id, order_id)
        await self._audit_for(user_id, actor, "order.cancel", order_id)
        self.lines.cancelled(order)
        return order

    async def get_order(self, user_id: str, order_id: str) -> Order:
        order = await self.store.get_order(user_id, order_id)
        if order is None:
            raise NotFoundError("Order not found", details={"orderId": order_id})
        return order

    async def list_orders(
        self,
        user_id: str,
        *,
        status: str | None = None,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Order], int]:
        return await self.store.list_orders(
            user_id, status=status, symbol=symbol, start=start, end=end, offset=offset, limit=limit
        )

    # -- positions and account -----------------------------------------------------------

    async def positions(self, user_id: str, symbol: str | None = None) -> list[Position]:
        return list(await self.broker.positions(user_id, symbol))

    async def pending_orders(self, user_id: str) -> list[Order]:
        return list(await self.broker.orders(user_id))

    async def close_position(
        self,
        user_id: str,
        ticket: int,
        volume: Decimal | None = None,
        *,
        actor: str | None = None,
    ) -> Position:
        position = await self.broker.close_position(user_id, ticket, volume)
        await self._audit_for(
            user_id, actor, "position.close", str(ticket), volume=str(volume) if volume else "all"
        )
        self.lines.closed(user_id, position, volume)
        return position

    async def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        *,
        actor: str | None = None,
    ) -> Position:
        position = await self.broker.modify_position(user_id, ticket, stop_loss, take_profit)
        await self._audit_for(
            user_id,
            actor,
            "position.modify",
            str(ticket),
            stopLoss=str(stop_loss),
            takeProfit=str(take_profit),
        )
        self.lines.position_modified(user_id, position, stop_loss, take_profit)
        return position

    async def account(self, user_id: str) -> Account:
        return await self.broker.account(user_id)

    def open_position(self, user_id: str, ticket: int) -> Position | None:
        """An open position from the broker's memory (for payloads on the hot path)."""
        return self.broker.open_position(user_id, ticket)

    async def position(self, user_id: str, ticket: int) -> Position:
        """A position, open (from the broker) or closed (from the store)."""
        try:
            return await self.broker.position(user_id, ticket)
        except NotFoundError:
            pass
        for closed in await self.store.list_positions(user_id, status="closed"):
            if closed.ticket == ticket:
                return closed
        raise NotFoundError("Position not found", details={"ticket": ticket})

    async def account_terms(self, user_id: str) -> AccountTerms:
        return await self.broker.account_terms(user_id)

    async def initial_balance(self, user_id: str) -> Decimal:
        """The balance returns are measured against: the account's opening balance when
        the broker knows it, otherwise the balance less what trading has added to it."""
        terms = await self.broker.account_terms(user_id)
        if terms.initial_balance is not None:
            return terms.initial_balance
        account = await self.broker.account(user_id)
        return account.balance - account.realized_pnl

    def latest_account(self, user_id: str) -> Account | None:
        """The last account snapshot announced (for payloads on the hot path)."""
        return self._accounts.get(user_id)

    async def deals(self, user_id: str) -> list[Deal]:
        return list(await self.broker.deals(user_id))

    async def performances(
        self, user_id: str, now: float, periods: Sequence[str] = analytics.PERIODS
    ) -> dict[str, analytics.Performance]:
        """The user's performance per period, from the trades kept in memory."""
        return await self.history.performances(
            user_id,
            initial_balance=await self.initial_balance(user_id),
            now=now,
            periods=periods,
        )

    # -- after the broker ------------------------------------------------------------------

    def on_broker_event(self, event: BrokerEvent) -> None:
        """Stored broker changes become channel events (never blocks)."""
        channel = _CHANNELS.get(event.kind)
        if channel is None or event.user_id is None:
            return
        data = event.data
        if isinstance(data, Account):
            self._accounts[data.user_id] = data
            alert = self.loss_monitor.observe(data)
            if alert is not None:
                self._spawn(self._raise_alert(data.user_id, alert), name="risk-alert")
        self._publish(Event(channel, data, user_id=event.user_id))
        if isinstance(data, Deal):
            # Fills happen on requests and on price moves (pending orders, SL/TP,
            # stop-out) alike: the audit log and the trade history get every one.
            self.history.on_deal(data)
            self.usage.execution(data.user_id)
            self.lines.filled(data)
            self._spawn(
                self._audit(
                    data.user_id,
                    "deal.fill",
                    str(data.ticket),
                    order=data.order_ticket,
                    position=data.position_ticket,
                    symbol=data.symbol,
                    side=str(data.side),
                    entry=str(data.entry),
                    volume=str(data.volume),
                    price=str(data.price),
                    reason=str(data.reason),
                ),
                name="audit-fill",
            )
            if data.entry is not DealEntry.IN:
                self._schedule_analytics(data.user_id)

    async def _raise_alert(self, user_id: str, alert: dict[str, Any]) -> None:
        if self.fenced is not None:
            return  # not the leader any more: the new one raises it (see the docstring)
        try:
            await self.store.save_alert(user_id, alert["alertId"], alert)
        except StoreFencedError as exc:
            if self.fenced is None:
                self.fenced = exc
                log.warning(
                    "lost the leader lease: risk alerts not stored or announced on this node",
                    extra={
                        "user": user_id,
                        "alertId": alert["alertId"],
                        "threshold": alert.get("threshold"),
                        "reason": str(exc),
                    },
                )
            return
        self._publish(Event("alerts", alert, user_id=user_id))
        self.lines.risk_alert(user_id, alert)
        await self._audit("system", "alert.raise", user_id, type=alert.get("type"))

    def _schedule_analytics(self, user_id: str) -> None:
        if user_id in self._analytics_due:
            return  # one refresh covers every trade closed meanwhile
        self._analytics_due.add(user_id)
        self._spawn(self._analytics(user_id), name="analytics")

    async def _analytics(self, user_id: str) -> None:
        await asyncio.sleep(0)  # let the closing burst (deal, position, account) pass
        self._analytics_due.discard(user_id)
        ccy = (await self.broker.account_terms(user_id)).currency
        now = self._clock()
        perfs = await self.performances(user_id, now, ("DAY", "ALL"))
        for period, perf in perfs.items():
            payload = analytics.seed001_payload(perf, period, now, currency=ccy)
            self._publish(Event("analytics", payload, user_id=user_id))
        self._publish(
            Event(
                "analytics",
                {
                    "type": "PERFORMANCE_SUMMARY",
                    "period": "ALL",
                    "performance_summary": analytics.seed000_summary(perfs["ALL"], currency=ccy),
                    "timestamp": datetime.fromtimestamp(now, UTC)
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                },
                user_id=user_id,
            )
        )

    async def _audit_for(
        self, user_id: str, actor: str | None, action: str, target: str, **details: Any
    ) -> None:
        """An entry for an action on ``user_id``'s account: theirs, or the acting admin's
        naming the account (so "what did this admin do" is one query by actor)."""
        if actor is None or actor == user_id:
            await self._audit(user_id, action, target, **details)
        else:
            await self._audit(actor, action, target, account=user_id, **details)

    async def _audit(self, actor: str, action: str, target: str, **details: Any) -> None:
        try:
            await self.audit.append(
                actor=actor,
                action=action,
                target=target,
                details={k: v for k, v in details.items() if v is not None},
            )
        except Exception:
            log.exception("could not write the audit log", extra={"action": action})


def hedges(request: OrderRequest, account: Account, positions: Sequence[Position]) -> bool:
    """Whether the order opens against a position on its symbol (hedging accounts only)."""
    return account.mode is AccountMode.HEDGING and any(
        p.symbol == request.symbol and p.side is not request.side and p.is_open for p in positions
    )


def _changes(changes: OrderChanges) -> dict[str, str]:
    given = {
        "price": changes.price,
        "stop_price": changes.stop_price,
        "volume": changes.volume,
        "stop_loss": changes.stop_loss,
        "take_profit": changes.take_profit,
    }
    return {k: str(v) for k, v in given.items() if v is not None}
