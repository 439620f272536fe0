"""``/trading/…`` (seed 003): orders, positions, portfolio and deal history.

Reads need a token; anything that trades needs the trader role. A user only ever
reaches their own records: another user's order or position id answers 404, exactly
like one that does not exist.

An admin may act on another user's account by naming it, ``?account=<userId>``: the
only way a request picks an account other than its token's. That is how an admin
trades a MetaTrader 5 terminal owned by ``mt5.owner``; the audit log names the admin as
the actor and the account in ``details.account``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from fxgate.domain.errors import FxgateError, NotFoundError, ValidationError
from fxgate.domain.market import SymbolSpec
from fxgate.domain.roles import Role
from fxgate.domain.symbols import SymbolNames
from fxgate.domain.timefmt import iso_ms, parse_iso
from fxgate.domain.trading import (
    Account,
    Deal,
    Order,
    OrderChanges,
    OrderRequest,
    OrderType,
    Position,
    PositionStatus,
    Side,
    TimeInForce,
)
from fxgate.services.ports.cluster import TradingCommands
from fxgate.services.trading import TradingService
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.parsing import field_error, invalid
from fxgate.web.rest.trading_models import (
    AccountPageQuery,
    AccountQuery,
    BalanceOut,
    CancelledOut,
    ClosePositionQuery,
    DealOut,
    OrderCreate,
    OrderOut,
    OrdersQuery,
    OrderUpdate,
    PerformanceOut,
    PortfolioOut,
    PositionOut,
    PositionUpdate,
)


def _ts(value: float | None) -> str | None:
    return None if value is None else iso_ms(value)


def order_out(o: Order) -> OrderOut:
    return OrderOut(
        id=o.id,
        ticket=o.ticket,
        symbol=o.symbol,
        type=str(o.type),
        side=str(o.side),
        quantity=o.volume,
        price=o.price,
        stop_price=o.stop_price,
        stop_loss=o.stop_loss,
        take_profit=o.take_profit,
        time_in_force=str(o.time_in_force),
        status=str(o.status),
        filled_quantity=o.filled_volume,
        average_price=o.average_price,
        client_order_id=o.client_order_id,
        strategy_id=o.strategy_id,
        connection_id=o.connection_id,
        comment=o.comment,
        position_ticket=o.position_ticket,
        reject_reason=o.reject_reason,
        created_at=iso_ms(o.created_at),
        updated_at=iso_ms(o.updated_at),
        filled_at=_ts(o.filled_at),
        cancelled_at=_ts(o.cancelled_at),
        expires_at=_ts(o.expires_at),
    )


def position_out(p: Position) -> PositionOut:
    closed = p.status is PositionStatus.CLOSED
    return PositionOut(
        id=p.id,
        ticket=p.ticket,
        symbol=p.symbol,
        side="long" if p.side is Side.BUY else "short",
        quantity=p.volume,
        average_price=p.open_price,
        current_price=p.close_price if closed and p.close_price is not None else p.current_price,
        stop_loss=p.stop_loss,
        take_profit=p.take_profit,
        unrealized_pn_l=0 if closed else p.profit,
        realized_pn_l=p.realized_pnl,
        commission=p.commission,
        swap=p.swap,
        margin_used=p.margin,
        status="closed" if closed else "open",
        close_price=p.close_price,
        strategy_id=p.strategy_id,
        created_at=iso_ms(p.opened_at),
        updated_at=iso_ms(p.updated_at),
        closed_at=_ts(p.closed_at),
    )


def deal_out(d: Deal) -> DealOut:
    return DealOut(
        ticket=d.ticket,
        order_ticket=d.order_ticket,
        position_ticket=d.position_ticket,
        symbol=d.symbol,
        side=str(d.side),
        entry=str(d.entry),
        quantity=d.volume,
        price=d.price,
        profit=d.profit,
        commission=d.commission,
        swap=d.swap,
        time=iso_ms(d.time),
        strategy_id=d.strategy_id,
    )


def position_ticket(position_id: str) -> int:
    """A position is named by its ticket or its REST id (``pos_<hex>``)."""
    try:
        if position_id.startswith("pos_"):
            return int(position_id[4:], 16)
        return int(position_id)
    except ValueError:
        raise NotFoundError("Position not found", details={"positionId": position_id}) from None


#: Domain field names (``details.field`` of the broker's and the trading service's
#: errors) that an order body spells differently: the one place they are translated.
ORDER_BODY_FIELDS = {"volume": "quantity"}


@contextmanager
def rest_fields(names: Mapping[str, str]) -> Iterator[None]:
    """Rename ``details.field`` of an error raised inside to the request's own spelling,
    so that an off-step ``quantity`` is reported as ``quantity``, not ``volume``."""
    try:
        yield
    except FxgateError as exc:
        details = exc.details
        if isinstance(details, dict) and details.get("field") in names:
            exc.details = {**details, "field": names[details["field"]]}
        raise


#: The request fields a repeated ``clientOrderId`` must match, with the order's names:
#: what the client chose at placement and nothing can change later.
_IDEMPOTENT_FIELDS = (
    ("symbol", "symbol"),
    ("type", "type"),
    ("side", "side"),
    ("quantity", "volume"),
    ("timeInForce", "time_in_force"),
    ("strategyId", "strategy_id"),
    ("connectionId", "connection_id"),
    ("comment", "comment"),
)


def _differences(request: OrderRequest, order: Order) -> list[str]:
    """The body fields in which a retried placement differs from the first order."""
    fields = [f for f, attr in _IDEMPOTENT_FIELDS if getattr(request, attr) != getattr(order, attr)]
    if request.type is not OrderType.MARKET and request.price != order.price:
        fields.append("price")
    if request.stop_price is not None and request.stop_price != order.stop_price:
        fields.append("stopPrice")
    expires = request.expires_at.timestamp() if request.expires_at is not None else None
    if expires != order.expires_at:
        fields.append("expiresAt")
    return fields


def _check_digits(spec: SymbolSpec | None, prices: Mapping[str, Decimal | None]) -> None:
    if spec is None:
        return  # the trading service names the unknown symbol
    message = f"More decimals than {spec.symbol}'s {spec.digits} digits"
    errors = [field_error(name, message, "decimal_places") for name in spec.too_fine(prices)]
    if errors:
        raise invalid("Invalid request body", errors)


def _date(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise invalid(
            "Invalid query parameters", [field_error(field, "Not an ISO 8601 time", "datetime")]
        ) from None


def _expiry(value: str | None) -> datetime | None:
    """``expiresAt`` as the request's time (naive is UTC, as for every REST time)."""
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise invalid(
            "Invalid request body", [field_error("expiresAt", "Not an ISO 8601 time", "datetime")]
        ) from None


class TradingHandler(ApiHandler):
    tag = "trading"

    def spec(self, symbol: str) -> SymbolSpec | None:
        return self.node.market.source.specs.get(symbol)

    def symbol(self, written: str) -> tuple[str, bool]:
        """The broker's symbol for ``BTCUSD`` or ``BTC/USD`` (seed 004), and whether it
        was written ``BASE/QUOTE`` (the order is then answered in that form)."""
        return SymbolNames(self.node.market.source.specs.values()).resolve(written)

    def trading(self) -> TradingService:
        return self.node.trading

    def commands(self) -> TradingCommands:
        """Where trading writes go: the trading service itself, or the cluster's leader."""
        return self.node.commands

    async def account_id(self, account: str | None) -> str:
        """Whose account this request acts on: the caller's own, unless an admin names
        another with ``?account=`` (identity still comes from the token alone). The named
        user must exist and be enabled, as a token's must: a mistyped id is a 404, not a
        new empty paper account."""
        if account is None or account == self.user_id:
            return self.user_id
        self.require(Role.ADMIN)
        if not await self.node.user_status.is_active(account):
            raise NotFoundError("No such account", details={"field": "account"})
        return account

    def actor(self, account_id: str) -> str | None:
        """The admin acting on someone else's account, for the audit log (None: the
        caller's own account, audited exactly as before)."""
        return None if account_id == self.user_id else self.user_id


class OrdersHandler(TradingHandler):
    path = "/trading/orders"

    @op.get(
        summary="Your orders, newest first",
        query=OrdersQuery,
        response=OrderOut,
        paginated=True,
        errors=(404,),
    )
    async def list_orders(self, query: OrdersQuery) -> op.Page[OrderOut]:
        symbol, slashed = self.symbol(query.symbol) if query.symbol else (None, False)
        orders, total = await self.trading().list_orders(
            await self.account_id(query.account),
            status=query.status,
            symbol=symbol,
            start=_date(query.start_date, "startDate"),
            end=_date(query.end_date, "endDate"),
            offset=query.offset,
            limit=query.limit,
        )
        out = [order_out(o) for o in orders]
        if slashed and query.symbol:
            for item in out:  # answered in the form it was asked
                item.symbol = query.symbol.upper()
        return op.Page(out, total=total)

    @op.post(
        summary="Place an order",
        body=OrderCreate,
        query=AccountQuery,
        response=OrderOut,
        role=Role.TRADER,
        status=201,
        description="A market order on the paper broker fills at once (status filled). "
        "Sending an order with a clientOrderId you used before returns that first order "
        "with status 200 and opens nothing.",
        errors=(400, 404, 409),
    )
    async def place_order(self, body: OrderCreate, query: AccountQuery) -> op.Reply[OrderOut]:
        user_id = await self.account_id(query.account)
        symbol, slashed = self.symbol(body.symbol)
        kind = OrderType(body.type)
        stop_price = body.stop_price
        price = body.price
        if kind is OrderType.MARKET:
            # A market order fills at the market: a price here is a client who meant
            # a limit order, and ignoring it would trade at a price they did not want.
            extra = [n for n, v in (("price", price), ("stopPrice", stop_price)) if v is not None]
            if extra:
                raise invalid(
                    "Invalid request body",
                    [
                        field_error(n, "Not allowed on a market order", "extra_forbidden")
                        for n in extra
                    ],
                )
        _check_digits(
            self.spec(symbol),
            {
                "price": price,
                "stopPrice": stop_price,
                "stopLoss": body.stop_loss,
                "takeProfit": body.take_profit,
            },
        )
        if kind is OrderType.STOP and price is None:
            price = stop_price  # seed 003 names a stop order's trigger stopPrice
        request = OrderRequest(
            symbol=symbol,
            type=kind,
            side=Side(body.side),
            volume=body.quantity,
            price=price,
            stop_price=stop_price,
            stop_loss=body.stop_loss,
            take_profit=body.take_profit,
            time_in_force=TimeInForce(body.time_in_force),
            client_order_id=body.client_order_id,
            strategy_id=body.strategy_id,
            connection_id=body.connection_id,
            comment=body.comment,
            expires_at=_expiry(body.expires_at),
        )
        with rest_fields(ORDER_BODY_FIELDS):
            order, created = await self.commands().place_order(
                user_id, request, actor=self.actor(user_id)
            )
        out = order_out(order)
        if slashed:
            out.symbol = body.symbol.upper()  # answered in the form it was asked
        if created:
            return op.Reply(out, message="Order placed", status=201)
        differ = _differences(request, order)
        if differ:
            raise ValidationError(
                "clientOrderId already used for a different order",
                field="clientOrderId",
                reason="idempotency_conflict",
                details={"differs": differ},
                status=409,
            )
        return op.Reply(out, message="Order already placed", status=200)


class OrderHandler(TradingHandler):
    path = "/trading/orders/{order_id}"

    @op.get(summary="One of your orders", query=AccountQuery, response=OrderOut, errors=(404,))
    async def show_order(self, order_id: str, query: AccountQuery) -> OrderOut:
        return order_out(
            await self.trading().get_order(await self.account_id(query.account), order_id)
        )

    @op.put(
        summary="Modify a pending order",
        body=OrderUpdate,
        query=AccountQuery,
        response=OrderOut,
        role=Role.TRADER,
        errors=(400, 404),
    )
    async def modify_order(self, order_id: str, body: OrderUpdate, query: AccountQuery) -> OrderOut:
        user_id = await self.account_id(query.account)
        if any(
            v is not None for v in (body.price, body.stop_price, body.stop_loss, body.take_profit)
        ):
            current = await self.trading().get_order(user_id, order_id)
            _check_digits(
                self.spec(current.symbol),
                {
                    "price": body.price,
                    "stopPrice": body.stop_price,
                    "stopLoss": body.stop_loss,
                    "takeProfit": body.take_profit,
                },
            )
        changes = OrderChanges(
            price=body.price,
            stop_price=body.stop_price,
            volume=body.quantity,
            stop_loss=body.stop_loss,
            take_profit=body.take_profit,
            expires_at=_expiry(body.expires_at),
        )
        with rest_fields(ORDER_BODY_FIELDS):
            order = await self.commands().modify_order(
                user_id, order_id, changes, actor=self.actor(user_id)
            )
        return order_out(order)

    @op.delete(
        summary="Cancel a pending order",
        query=AccountQuery,
        response=CancelledOut,
        role=Role.TRADER,
        errors=(400, 404),
    )
    async def cancel_order(self, order_id: str, query: AccountQuery) -> op.Reply[CancelledOut]:
        user_id = await self.account_id(query.account)
        order = await self.commands().cancel_order(user_id, order_id, actor=self.actor(user_id))
        out = CancelledOut(
            id=order.id, status=str(order.status), cancelled_at=_ts(order.cancelled_at)
        )
        return op.Reply(out, message="Order cancelled successfully")


class PositionsHandler(TradingHandler):
    path = "/trading/positions"

    @op.get(
        summary="Your open positions",
        query=AccountQuery,
        response=list[PositionOut],
        errors=(404,),
    )
    async def list_positions(self, query: AccountQuery) -> list[PositionOut]:
        user_id = await self.account_id(query.account)
        return [position_out(p) for p in await self.trading().positions(user_id)]


class PositionHandler(TradingHandler):
    path = "/trading/positions/{position_id}"

    @op.get(
        summary="One of your positions (open or closed)",
        query=AccountQuery,
        response=PositionOut,
        errors=(404,),
    )
    async def show_position(self, position_id: str, query: AccountQuery) -> PositionOut:
        user_id = await self.account_id(query.account)
        ticket = position_ticket(position_id)
        try:
            position = await self.trading().position(user_id, ticket)
        except NotFoundError:
            raise NotFoundError("Position not found", details={"positionId": position_id}) from None
        return position_out(position)

    @op.put(
        summary="Set or remove a position's stop loss and take profit (0 removes)",
        body=PositionUpdate,
        query=AccountQuery,
        response=PositionOut,
        role=Role.TRADER,
        errors=(400, 404),
    )
    async def modify_position(
        self, position_id: str, body: PositionUpdate, query: AccountQuery
    ) -> PositionOut:
        user_id = await self.account_id(query.account)
        ticket = position_ticket(position_id)
        current = self.trading().open_position(user_id, ticket)
        if current is not None:
            prices = {"stopLoss": body.stop_loss, "takeProfit": body.take_profit}
            _check_digits(self.spec(current.symbol), prices)
        position = await self.commands().modify_position(
            user_id, ticket, body.stop_loss, body.take_profit, actor=self.actor(user_id)
        )
        return position_out(position)

    @op.delete(
        summary="Close a position (or part of it with ?volume=)",
        query=ClosePositionQuery,
        response=PositionOut,
        role=Role.TRADER,
        errors=(400, 404),
    )
    async def close_position(
        self, position_id: str, query: ClosePositionQuery
    ) -> op.Reply[PositionOut]:
        user_id = await self.account_id(query.account)
        position = await self.commands().close_position(
            user_id, position_ticket(position_id), query.volume, actor=self.actor(user_id)
        )
        return op.Reply(position_out(position), message="Position closed")


class PortfolioHandler(TradingHandler):
    path = "/trading/portfolio"

    @op.get(
        summary="Balance, equity, margin and P&L of your account",
        query=AccountQuery,
        response=PortfolioOut,
        errors=(404,),
    )
    async def portfolio(self, query: AccountQuery) -> PortfolioOut:
        user_id = await self.account_id(query.account)
        trading = self.trading()
        account: Account = await trading.account(user_id)
        positions = await trading.positions(user_id)
        orders = await trading.pending_orders(user_id)
        initial = await trading.initial_balance(user_id)
        total = account.equity - initial
        # Returns of closed trades per calendar period, in percent of the initial
        # balance; the account's life so far stands in for the year.
        perfs = await trading.performances(user_id, time.time())

        def ret(period: str) -> float:
            perf = perfs[period]
            return round(float(perf.net_profit / initial * 100), 4) if initial else 0.0

        return PortfolioOut(
            total_value=account.equity,
            available_balance=account.free_margin,
            balance=account.balance,
            equity=account.equity,
            margin_used=account.margin,
            margin_level=account.margin_level,
            unrealized_pn_l=account.profit,
            realized_pn_l=account.realized_pnl,
            total_pn_l=total,
            day_pn_l=account.day_pnl,
            positions=len(positions),
            open_orders=len(orders),
            currency=account.currency,
            leverage=account.leverage,
            performance=PerformanceOut(
                daily=ret("DAY"), weekly=ret("WEEK"), monthly=ret("MONTH"), yearly=ret("ALL")
            ),
        )


class BalancesHandler(TradingHandler):
    path = "/trading/balances"

    @op.get(
        summary="Your balances by currency (seed 004's getBalances)",
        query=AccountQuery,
        response=list[BalanceOut],
        errors=(404,),
    )
    async def balances(self, query: AccountQuery) -> list[BalanceOut]:
        account = await self.trading().account(await self.account_id(query.account))
        return [
            BalanceOut(
                currency=account.currency,
                total=account.balance,
                available=account.free_margin,
                locked=account.margin,
                equity=account.equity,
                unrealized_pn_l=account.profit,
                updated_at=iso_ms(account.updated_at),
            )
        ]


class DealsHandler(TradingHandler):
    path = "/trading/deals"

    @op.get(
        summary="Your deal history, newest first",
        query=AccountPageQuery,
        response=DealOut,
        paginated=True,
        errors=(404,),
    )
    async def list_deals(self, query: AccountPageQuery) -> op.Page[DealOut]:
        deals, total = await self.node.store.trading.list_deals(
            await self.account_id(query.account), offset=query.offset, limit=query.limit
        )
        return op.Page([deal_out(d) for d in deals], total=total)


HANDLERS: tuple[type[ApiHandler], ...] = (
    OrdersHandler,
    OrderHandler,
    PositionsHandler,
    PositionHandler,
    PortfolioHandler,
    BalancesHandler,
    DealsHandler,
)
