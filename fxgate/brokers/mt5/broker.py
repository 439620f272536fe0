"""The ``Broker`` port over a MetaTrader 5 terminal.

Two loops poll the terminal through its one worker (:mod:`.terminal`): ticks every
``mt5.poll_interval`` into the quote feed, and positions, orders, deals and account
every ``mt5.trade_poll_interval`` into :class:`~.sync.Ledger`, whose changes are stored
and then announced, exactly once. A trade (place, modify, cancel, close) holds the
same lock as a poll, sends its request, and polls at once, so that its answer is the
record the listeners were just told about.

Faults: a call that finds the terminal gone (IPC errors -10001..-10005, the bridge
lost, not logged in) turns the broker unhealthy, marks the quotes stale, and starts
reconnecting with capped exponential backoff; meanwhile trades are refused with a
``TRADING_ERROR`` (never queued). The first poll after reconnecting announces what
changed while the terminal was away, once. An ``order_send`` whose answer was lost is
never repeated: the terminal's orders and history are searched for the request's
comment token and ``magic`` first, and the order found is the answer.

One terminal is one account, owned by ``owner``: every record belongs to that user;
another user sees an empty account, finds no record, and may not trade
(``AUTHORIZATION_ERROR``). Admins are not special here: the port carries no role, and an
admin trades the account by naming its owner (REST's ``?account=``), so the calls that
reach this adapter carry ``owner``.

The class is built in three layers, one module each: :mod:`.session` (state, health,
lifecycle, the polling loops, reconnection), :mod:`.reads` (the port's reads) and this
module (the order path).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fxgate.brokers.mt5.convert import Meta
from fxgate.brokers.mt5.reads import ORDER_CALC, Mt5Reads, entry_price
from fxgate.brokers.mt5.requests import (
    DONE,
    ORDER_TIME_GTC,
    ORDER_TIME_SPECIFIED,
    RETRIES,
    RETRY,
    TRADE_ACTION_DEAL,
    TRADE_ACTION_MODIFY,
    TRADE_ACTION_REMOVE,
    TRADE_ACTION_SLTP,
    error_for,
    filling,
    terminal_down,
    token,
    trade_request,
)
from fxgate.brokers.mt5.terminal import TerminalError
from fxgate.brokers.paper.margin import exit_price
from fxgate.brokers.paper.validation import (
    apply_changes,
    check_stops,
    check_trigger_not_reached,
    order_prices,
    price_or_none,
)
from fxgate.domain.errors import (
    NotFoundError,
    TradingError,
    invalid_field,
    refused,
)
from fxgate.domain.trading import (
    Order,
    OrderChanges,
    OrderRequest,
    OrderType,
    Position,
    Side,
    TimeInForce,
    check_expiry,
    check_volume,
    ticket_of_order_id,
)

log = logging.getLogger(__name__)

#: How far back the history is searched for a request whose answer was lost.
_LOOKBACK = timedelta(hours=1)


class Mt5Broker(Mt5Reads):
    """See the module docstring. ``connect_kwargs`` go to ``initialize`` as they are."""

    def _may_trade(self, user_id: str) -> None:
        self._may_see(user_id)
        if self.fenced is not None:
            raise self.refusal()
        if not self.connected:
            raise terminal_down(self.last_error or "not connected")

    async def place_order(self, user_id: str, request: OrderRequest) -> Order:
        self._may_trade(user_id)
        spec = await self.symbol(request.symbol)
        check_volume(spec, request.volume)
        expires_at = check_expiry(request, self._clock())
        price, stop = order_prices(spec, request)
        sl = price_or_none(spec, request.stop_loss, "stopLoss")
        tp = price_or_none(spec, request.take_profit, "takeProfit")
        prices = await self._prices(request.symbol)
        reference = exit_price(request.side, prices) if price is None else price
        check_stops(spec, request.side, reference, sl, tp)
        if stop is not None:
            check_trigger_not_reached(request.side, stop, prices)
        if not self.trade_allowed:
            raise error_for(10027, "AutoTrading disabled")
        tok = token(request.client_order_id)
        meta = Meta(
            request.client_order_id,
            request.strategy_id,
            request.connection_id,
            request.comment,
            request.time_in_force,
        )
        req = trade_request(
            request,
            price=price,
            stop_price=stop,
            market_price=float(entry_price(request.side, prices)),
            allowed_filling=int(self._infos.get(request.symbol, {}).get("filling_mode", 3)),
            magic=self.magic,
            deviation=self.deviation,
            comment=tok,
            expires_at=expires_at,
        )
        req["sl"], req["tp"] = float(sl or 0), float(tp or 0)
        market = request.type is OrderType.MARKET
        async with self._lock:
            self.ledger.by_comment[tok] = meta
            try:
                ticket = await self._send(req, tok, refresh=request.side if market else None)
            except TradingError as exc:
                if (exc.details or {}).get("reason") != "unknown_state":
                    self.ledger.by_comment.pop(tok, None)  # nothing to attribute later
                raise
            except Exception:
                self.ledger.by_comment.pop(tok, None)
                raise
            self.ledger.meta[ticket] = meta
            await self._sync()
        found = self.ledger.orders.get(ticket) or self.ledger.finished.get(ticket)
        if found is None:
            raise refused("The order was sent but the terminal does not show it", "not_found")
        return found

    async def _send(self, req: dict[str, Any], tok: str, *, refresh: Side | None = None) -> int:
        """``order_check``, then ``order_send`` (requotes retried, answers never lost):
        the ticket of the order the request made."""
        check = await self._run("call", "order_check", (req,))
        code = int(check.get("retcode", 0))
        if code not in DONE:
            raise error_for(code, str(check.get("comment", "")))
        for attempt in range(RETRIES + 1):
            try:
                result = await self.terminal.call("order_send", req)
            except TerminalError as exc:
                return await self._after_lost_answer(exc, tok)
            code = int(result.get("retcode", 0))
            if code in DONE and code != 0:
                return int(result.get("order") or 0) or await self._after_lost_answer(None, tok)
            if code in RETRY and attempt < RETRIES and refresh is not None:
                req["price"] = float(entry_price(refresh, await self._prices(str(req["symbol"]))))
                continue
            raise error_for(code, str(result.get("comment", "")))
        raise error_for(10004, "requote")  # pragma: no cover - the loop always returns

    async def _after_lost_answer(self, exc: TerminalError | None, tok: str) -> int:
        """The request may or may not have executed: ask the terminal before answering."""
        if exc is not None and not exc.lost:
            raise refused(f"The terminal refused the request: {exc.message}", "invalid_request")
        if exc is not None:
            log.warning(
                "mt5 order_send answer lost; looking the order up", extra={"code": exc.code}
            )
        magic = self.magic
        try:
            ticket = await self.terminal.run("find_request", tok, magic, _LOOKBACK)
        except TerminalError as lookup:
            if lookup.lost:
                self._lost(lookup)
            raise TradingError(
                "The terminal stopped answering while the order was sent; whether it was"
                " executed is not known yet. It will appear on the orders channel if it was;"
                " do not send it again before checking",
                details={"reason": "unknown_state", "terminal": lookup.message},
            ) from None
        if ticket is None:
            if exc is not None and exc.lost:
                self._lost(exc)
            raise terminal_down(exc.message if exc is not None else "no answer")
        return int(ticket)

    def _order(self, user_id: str, order_id: str) -> Order:
        ticket = ticket_of_order_id(order_id)
        order = self.ledger.orders.get(ticket) if ticket is not None else None
        if order is None or not self._mine(user_id):
            raise NotFoundError("Order not found")
        return order

    def _position(self, user_id: str, ticket: int) -> Position:
        pos = self.open_position(user_id, ticket)
        if pos is None:
            raise NotFoundError("Position not found")
        return pos

    async def modify_order(self, user_id: str, order_id: str, changes: OrderChanges) -> Order:
        order = self._order(user_id, order_id)
        self._may_trade(user_id)
        spec = await self.symbol(order.symbol)
        if changes.volume is not None and changes.volume != order.volume:
            raise invalid_field(
                "volume",
                "MetaTrader 5 cannot change a pending order's volume; cancel it and place"
                " a new one",
                "not_supported",
            )
        prices = await self._prices(order.symbol)
        new = apply_changes(spec, order, changes, prices, self._clock())
        if new.type is OrderType.STOP_LIMIT:
            mt5_price, stoplimit = new.stop_price, new.price
        else:
            mt5_price, stoplimit = new.price, None
        req = {
            "action": TRADE_ACTION_MODIFY,
            "order": order.ticket,
            "symbol": order.symbol,
            "price": float(mt5_price or 0),
            "stoplimit": float(stoplimit or 0),
            "sl": float(new.stop_loss or 0),
            "tp": float(new.take_profit or 0),
            # MT5 takes the order's time anew on every modify: GTC would drop an expiry.
            "type_time": ORDER_TIME_GTC if new.expires_at is None else ORDER_TIME_SPECIFIED,
            "expiration": 0 if new.expires_at is None else int(new.expires_at),
            "magic": self.magic,
        }
        async with self._lock:
            await self._send_simple(req)
            await self._sync()
        return self.ledger.orders.get(order.ticket) or self.ledger.finished.get(order.ticket) or new

    async def cancel_order(self, user_id: str, order_id: str) -> Order:
        order = self._order(user_id, order_id)
        self._may_trade(user_id)
        req = {"action": TRADE_ACTION_REMOVE, "order": order.ticket, "magic": self.magic}
        async with self._lock:
            await self._send_simple(req)
            await self._sync()
        return self.ledger.finished.get(order.ticket) or self._order(user_id, order_id)

    async def close_position(
        self, user_id: str, ticket: int, volume: Decimal | None = None
    ) -> Position:
        pos = self._position(user_id, ticket)
        self._may_trade(user_id)
        spec = await self.symbol(pos.symbol)
        if volume is not None:
            check_volume(spec, volume)
            if volume > pos.volume:
                raise invalid_field(
                    "volume",
                    f"The position has only {pos.volume} lots",
                    "above_position",
                    positionVolume=str(pos.volume),
                )
        side = pos.side.opposite
        prices = await self._prices(pos.symbol)
        tok = token(None)
        req = {
            "action": TRADE_ACTION_DEAL,
            "magic": self.magic,
            "symbol": pos.symbol,
            "volume": float(volume if volume is not None else pos.volume),
            "price": float(entry_price(side, prices)),
            "deviation": self.deviation,
            "type": ORDER_CALC[side],
            "type_filling": filling(
                int(self._infos.get(pos.symbol, {}).get("filling_mode", 3)), TimeInForce.GTC, False
            ),
            "type_time": 0,
            "position": ticket,
            "comment": tok,
        }
        async with self._lock:
            self.ledger.by_comment[tok] = Meta(None, pos.strategy_id, pos.connection_id, None)
            await self._send(req, tok, refresh=side)
            await self._sync()
        return self.ledger.positions.get(ticket) or self.ledger.closed.get(ticket) or pos

    async def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> Position:
        pos = self._position(user_id, ticket)
        self._may_trade(user_id)
        spec = await self.symbol(pos.symbol)
        sl = pos.stop_loss if stop_loss is None else price_or_none(spec, stop_loss, "stopLoss")
        tp = (
            pos.take_profit
            if take_profit is None
            else price_or_none(spec, take_profit, "takeProfit")
        )
        prices = await self._prices(pos.symbol)
        check_stops(spec, pos.side, exit_price(pos.side, prices), sl, tp)
        req = {
            "action": TRADE_ACTION_SLTP,
            "symbol": pos.symbol,
            "position": ticket,
            "sl": float(sl or 0),
            "tp": float(tp or 0),
            "magic": self.magic,
        }
        async with self._lock:
            await self._send_simple(req)
            await self._sync()
        return self.ledger.positions.get(ticket) or self.ledger.closed.get(ticket) or pos

    async def _send_simple(self, req: dict[str, Any]) -> None:
        """A modification or removal: sent once; a lost answer is resolved by the poll
        that follows (sending it again would be harmless, but is not needed)."""
        try:
            result = await self.terminal.call("order_send", req)
        except TerminalError as exc:
            if exc.lost:
                self._lost(exc)
                raise terminal_down(exc.message) from None
            raise refused(
                f"The terminal refused the request: {exc.message}", "invalid_request"
            ) from None
        code = int(result.get("retcode", 0))
        if code not in DONE or code == 0:
            raise error_for(code, str(result.get("comment", "")))
