"""``order_check`` and ``order_send``: a request dict in, retcodes and records out.

The request is checked the way the package checks it (unknown types or a ``comment``
over 31 characters: ``None`` with -2), then the way the trade server does (AutoTrading,
filling mode, trade mode, prices, volume, money: retcodes), and only then handed to the
paper engine. A refusal from the engine becomes the retcode a server answers for it
(``retcode_for``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fxgate.domain.errors import FxgateError
from fxgate.domain.trading import (
    Order,
    OrderChanges,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    check_volume,
    order_id_for,
)

from . import _constants as c
from ._records import OrderCheckResult, OrderSendResult, TradeRequest
from ._terminal import DOMAIN_TYPES, USER, Extras, Terminal, retcode_for

Fail = Callable[[int, str], Exception]

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "action": int, "magic": int, "order": int, "symbol": str, "volume": (int, float),
    "price": (int, float), "stoplimit": (int, float), "sl": (int, float), "tp": (int, float),
    "deviation": int, "type": int, "type_filling": int, "type_time": int, "expiration": int,
    "comment": str, "position": int, "position_by": int,
}  # fmt: skip
_DEFAULTS: dict[str, Any] = {
    "action": 0, "magic": 0, "order": 0, "symbol": "", "volume": 0.0, "price": 0.0,
    "stoplimit": 0.0, "sl": 0.0, "tp": 0.0, "deviation": 0, "type": 0, "type_filling": 0,
    "type_time": 0, "expiration": 0, "comment": "", "position": 0, "position_by": 0,
}  # fmt: skip
_TEXT = {
    c.TRADE_RETCODE_REQUOTE: "Requote",
    c.TRADE_RETCODE_REJECT: "Request rejected",
    c.TRADE_RETCODE_PLACED: "Order placed",
    c.TRADE_RETCODE_DONE: "Request executed",
    c.TRADE_RETCODE_DONE_PARTIAL: "Request executed partially",
    c.TRADE_RETCODE_INVALID: "Invalid request",
    c.TRADE_RETCODE_INVALID_VOLUME: "Invalid volume",
    c.TRADE_RETCODE_INVALID_PRICE: "Invalid price",
    c.TRADE_RETCODE_INVALID_STOPS: "Invalid stops",
    c.TRADE_RETCODE_TRADE_DISABLED: "Trade disabled",
    c.TRADE_RETCODE_MARKET_CLOSED: "Market closed",
    c.TRADE_RETCODE_NO_MONEY: "No money",
    c.TRADE_RETCODE_PRICE_OFF: "No prices",
    c.TRADE_RETCODE_INVALID_EXPIRATION: "Invalid expiration",
    c.TRADE_RETCODE_NO_CHANGES: "No changes",
    c.TRADE_RETCODE_CLIENT_DISABLES_AT: "AutoTrading disabled by client",
    c.TRADE_RETCODE_INVALID_FILL: "Unsupported filling mode",
    c.TRADE_RETCODE_CONNECTION: "No connection",
    c.TRADE_RETCODE_POSITION_CLOSED: "Position doesn't exist",
    c.TRADE_RETCODE_CLOSE_ONLY: "Close only",
}
MAX_COMMENT = 31


class Refused(Exception):
    def __init__(self, retcode: int, detail: str = "") -> None:
        super().__init__(detail)
        self.retcode = retcode
        self.detail = detail


@dataclass(slots=True)
class Outcome:
    retcode: int
    deal: int = 0
    order: int = 0
    volume: float = 0.0
    price: float = 0.0
    comment: str = ""


def parse(request: Any, fail: Fail) -> TradeRequest:
    """The package's own argument checks, before anything reaches the terminal."""
    if not isinstance(request, dict):
        raise fail(c.RES_E_INVALID_PARAMS, "Invalid arguments")
    values = dict(_DEFAULTS)
    for key, value in request.items():
        kind = _FIELDS.get(key)
        if kind is None:
            raise fail(c.RES_E_INVALID_PARAMS, f'Invalid "{key}" argument')
        if isinstance(value, bool) or not isinstance(value, kind):
            raise fail(c.RES_E_INVALID_PARAMS, f'Invalid "{key}" argument')
        values[key] = float(value) if kind == (int, float) else value
    if len(values["comment"]) > MAX_COMMENT:
        raise fail(c.RES_E_INVALID_PARAMS, 'Invalid "comment" argument')
    return TradeRequest(**values)


def _dec(value: float) -> Decimal | None:
    return Decimal(repr(value)) if value else None


def _tif(t: Terminal, req: TradeRequest, market: bool) -> TimeInForce:
    """The filling mode as the symbol allows it (10030 otherwise)."""
    allowed = t.filling[req.symbol]
    if req.type_filling == c.ORDER_FILLING_FOK and allowed & c._FILLING_FOK:
        return TimeInForce.FOK
    if req.type_filling == c.ORDER_FILLING_IOC and allowed & c._FILLING_IOC:
        return TimeInForce.IOC
    if req.type_filling == c.ORDER_FILLING_RETURN and not market:
        return TimeInForce.GTC
    raise Refused(c.TRADE_RETCODE_INVALID_FILL)


def _symbol(t: Terminal, req: TradeRequest, opening: bool, side: Side | None) -> None:
    if req.symbol not in t.specs:
        raise Refused(c.TRADE_RETCODE_INVALID, f"unknown symbol {req.symbol}")
    if req.symbol not in t.selected:
        raise Refused(c.TRADE_RETCODE_INVALID, f"{req.symbol} is not in Market Watch")
    mode = t.trade_modes[req.symbol]
    if mode == c.SYMBOL_TRADE_MODE_DISABLED:
        raise Refused(c.TRADE_RETCODE_TRADE_DISABLED)
    if opening and mode == c.SYMBOL_TRADE_MODE_CLOSEONLY:
        raise Refused(c.TRADE_RETCODE_CLOSE_ONLY)
    if opening and mode == c.SYMBOL_TRADE_MODE_LONGONLY and side is Side.SELL:
        raise Refused(c.TRADE_RETCODE_LONG_ONLY)
    if opening and mode == c.SYMBOL_TRADE_MODE_SHORTONLY and side is Side.BUY:
        raise Refused(c.TRADE_RETCODE_SHORT_ONLY)


def _expiration(t: Terminal, req: TradeRequest) -> int:
    now = t.now()
    if req.type_time == c.ORDER_TIME_GTC:
        return 0
    if req.type_time == c.ORDER_TIME_DAY:
        return int(now // 86_400 + 1) * 86_400
    if req.type_time in (c.ORDER_TIME_SPECIFIED, c.ORDER_TIME_SPECIFIED_DAY):
        if req.expiration <= now:
            raise Refused(c.TRADE_RETCODE_INVALID_EXPIRATION)
        if req.type_time == c.ORDER_TIME_SPECIFIED_DAY:
            return int(req.expiration // 86_400 + 1) * 86_400
        return req.expiration
    raise Refused(c.TRADE_RETCODE_INVALID_EXPIRATION)


def _pending_request(t: Terminal, req: TradeRequest) -> tuple[OrderRequest, Extras]:
    kind = DOMAIN_TYPES.get(req.type)
    if kind is None or kind[0] is OrderType.MARKET:
        raise Refused(c.TRADE_RETCODE_INVALID, "not a pending order type")
    otype, side = kind
    _symbol(t, req, True, side)
    tif = _tif(t, req, market=False)
    prices = t.engine.prices(req.symbol)
    if prices is None:
        raise Refused(c.TRADE_RETCODE_PRICE_OFF)
    price = _dec(req.price)
    if price is None:
        raise Refused(c.TRADE_RETCODE_INVALID_PRICE, "no price")
    if otype is OrderType.LIMIT and (
        (side is Side.BUY and price >= prices.ask) or (side is Side.SELL and price <= prices.bid)
    ):
        raise Refused(c.TRADE_RETCODE_INVALID_PRICE, "a limit order must be away from the market")
    if otype is OrderType.STOP_LIMIT and not req.stoplimit:
        raise Refused(c.TRADE_RETCODE_INVALID_PRICE, "a stop-limit order needs stoplimit")
    expiration = _expiration(t, req)
    domain = OrderRequest(
        symbol=req.symbol,
        type=otype,
        side=side,
        volume=Decimal(repr(req.volume)),
        price=_dec(req.stoplimit) if otype is OrderType.STOP_LIMIT else price,
        stop_price=price if otype in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
        stop_loss=_dec(req.sl),
        take_profit=_dec(req.tp),
        time_in_force=tif,
        comment=req.comment or None,
    )
    ex = Extras(req.magic, c.ORDER_REASON_EXPERT, req.type_time, expiration, req.type_filling,
                req.comment)  # fmt: skip
    return domain, ex


def _deal(t: Terminal, req: TradeRequest) -> Outcome:
    if req.type not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL):
        raise Refused(c.TRADE_RETCODE_INVALID, "a deal is a buy or a sell")
    side = Side.BUY if req.type == c.ORDER_TYPE_BUY else Side.SELL
    ex = Extras(req.magic, c.ORDER_REASON_EXPERT, c.ORDER_TIME_GTC, 0, req.type_filling,
                req.comment)  # fmt: skip
    volume = Decimal(repr(req.volume))
    if req.position:
        try:
            pos = t.engine.position(USER, req.position)
        except FxgateError:
            raise Refused(c.TRADE_RETCODE_POSITION_CLOSED) from None
        if pos.symbol != req.symbol or pos.side is side:
            raise Refused(c.TRADE_RETCODE_INVALID, "the close must be opposite to the position")
        _symbol(t, req, False, side)
        _tif(t, req, market=True)
        result = t.run(ex, lambda: t.engine.close_position(USER, pos.ticket, volume))
    else:
        _symbol(t, req, True, side)
        tif = _tif(t, req, market=True)
        domain = OrderRequest(
            symbol=req.symbol,
            type=OrderType.MARKET,
            side=side,
            volume=volume,
            stop_loss=_dec(req.sl),
            take_profit=_dec(req.tp),
            time_in_force=tif,
            comment=req.comment or None,
        )
        result = t.run(ex, lambda: t.engine.place_order(USER, domain))
    orders = [o for o in result.orders if o.type is OrderType.MARKET]
    deals = result.deals
    if not orders:
        raise Refused(c.TRADE_RETCODE_REJECT)
    order = orders[0]
    if not deals:
        return Outcome(c.TRADE_RETCODE_REJECT, 0, 0, 0.0, 0.0, order.reject_reason or "")
    filled = sum(d.volume for d in deals)
    code = c.TRADE_RETCODE_DONE if filled >= volume else c.TRADE_RETCODE_DONE_PARTIAL
    return Outcome(code, deals[0].ticket, order.ticket, float(filled), float(deals[0].price))


def _pending(t: Terminal, req: TradeRequest) -> Outcome:
    domain, ex = _pending_request(t, req)
    result = t.run(ex, lambda: t.engine.place_order(USER, domain))
    order = result.subject
    assert isinstance(order, Order)
    return Outcome(t.s.pending_retcode, 0, order.ticket, float(order.volume), 0.0)


def _sltp(t: Terminal, req: TradeRequest) -> Outcome:
    try:
        pos = t.engine.position(USER, req.position)
    except FxgateError:
        raise Refused(c.TRADE_RETCODE_POSITION_CLOSED) from None
    if float(pos.stop_loss or 0) == req.sl and float(pos.take_profit or 0) == req.tp:
        raise Refused(c.TRADE_RETCODE_NO_CHANGES)
    sl, tp = Decimal(repr(req.sl)), Decimal(repr(req.tp))
    ex = t.extras.get(pos.ticket, Extras())
    t.run(ex, lambda: t.engine.modify_position(USER, pos.ticket, sl, tp))
    return Outcome(c.TRADE_RETCODE_DONE)


def _find_order(t: Terminal, ticket: int) -> Order:
    try:
        return t.engine.order(USER, order_id_for(ticket))
    except FxgateError:
        raise Refused(c.TRADE_RETCODE_INVALID, f"no pending order {ticket}") from None


def _modify(t: Terminal, req: TradeRequest) -> Outcome:
    order = _find_order(t, req.order)
    ex = t.extras.get(order.ticket, Extras())
    stop_limit = order.type is OrderType.STOP_LIMIT
    changes = OrderChanges(
        price=_dec(req.stoplimit) if stop_limit else _dec(req.price),
        stop_price=_dec(req.price) if stop_limit or order.type is OrderType.STOP else None,
        stop_loss=Decimal(repr(req.sl)),
        take_profit=Decimal(repr(req.tp)),
    )
    if req.type_time != ex.type_time or req.expiration != ex.expiration:
        fake = req._replace(symbol=order.symbol)
        ex.expiration = _expiration(t, fake)
        ex.type_time = req.type_time
    t.run(ex, lambda: t.engine.modify_order(USER, order.id, changes))
    return Outcome(c.TRADE_RETCODE_DONE, 0, order.ticket)


def _remove(t: Terminal, req: TradeRequest) -> Outcome:
    order = _find_order(t, req.order)
    t.run(t.extras.get(order.ticket, Extras()), lambda: t.engine.cancel_order(USER, order.id))
    return Outcome(c.TRADE_RETCODE_DONE, 0, order.ticket)


_ACTIONS = {
    c.TRADE_ACTION_DEAL: _deal,
    c.TRADE_ACTION_PENDING: _pending,
    c.TRADE_ACTION_SLTP: _sltp,
    c.TRADE_ACTION_MODIFY: _modify,
    c.TRADE_ACTION_REMOVE: _remove,
}


def _gate(t: Terminal, req: TradeRequest) -> None:
    if not t.autotrading:
        raise Refused(c.TRADE_RETCODE_CLIENT_DISABLES_AT)
    if t.faults.disconnected:
        raise Refused(c.TRADE_RETCODE_CONNECTION)
    if req.action not in _ACTIONS:
        raise Refused(c.TRADE_RETCODE_INVALID, "unsupported action")


def _bid_ask(t: Terminal, symbol: str) -> tuple[float, float]:
    prices = t.engine.prices(symbol) if symbol in t.specs else None
    if prices is None:
        return 0.0, 0.0
    return float(prices.bid), float(prices.ask)


def order_send(t: Terminal, request: Any, fail: Fail) -> OrderSendResult:
    req = parse(request, fail)
    request_id = next(t.request_ids)
    try:
        _gate(t, req)
        if (
            req.action == c.TRADE_ACTION_DEAL
            and t.faults.requotes > 0
            and req.type in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL)
        ):
            t.faults.requotes -= 1
            raise Refused(c.TRADE_RETCODE_REQUOTE)
        outcome = _ACTIONS[req.action](t, req)
    except Refused as r:
        outcome = Outcome(r.retcode, comment=r.detail)
    except FxgateError as e:
        outcome = Outcome(retcode_for(e), comment=e.message)
    bid, ask = _bid_ask(t, req.symbol)
    text = _TEXT.get(outcome.retcode, "Request rejected")
    if outcome.comment and outcome.retcode not in (c.TRADE_RETCODE_DONE, t.s.pending_retcode):
        text = f"{text} ({outcome.comment})"
    result = OrderSendResult(
        outcome.retcode, outcome.deal, outcome.order, outcome.volume, outcome.price, bid, ask,
        text, request_id, 0, req,
    )  # fmt: skip
    f = t.faults
    if f.lost_answers > 0 and outcome.retcode in (c.TRADE_RETCODE_DONE, t.s.pending_retcode,
                                                  c.TRADE_RETCODE_DONE_PARTIAL):  # fmt: skip
        f.lost_answers -= 1
        if f.lost_mode == "raise":
            raise ConnectionResetError("connection closed by peer (fake MT5: answer lost)")
        raise fail(c.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
    return result


def order_check(t: Terminal, request: Any, fail: Fail) -> OrderCheckResult:
    """What ``order_send`` would answer, without sending: retcode 0 ("Done") when the
    request would pass, with the account as it would be after it."""
    req = parse(request, fail)
    acc = t.engine.account(USER)
    margin = acc.margin
    code, comment = 0, "Done"
    try:
        _gate(t, req)
        if req.action == c.TRADE_ACTION_DEAL:
            if req.type not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL):
                raise Refused(c.TRADE_RETCODE_INVALID)
            side = Side.BUY if req.type == c.ORDER_TYPE_BUY else Side.SELL
            _symbol(t, req, not req.position, side)
            _tif(t, req, market=True)
            spec = t.specs[req.symbol]
            volume = Decimal(repr(req.volume))
            check_volume(spec, volume)
            if not t.is_open(req.symbol, t.now()):
                raise Refused(c.TRADE_RETCODE_MARKET_CLOSED)
            if not req.position:
                margin += t.engine.calc_margin(USER, side, req.symbol, volume)
                if margin > acc.equity:
                    raise Refused(c.TRADE_RETCODE_NO_MONEY)
        elif req.action == c.TRADE_ACTION_PENDING:
            domain, _ = _pending_request(t, req)
            check_volume(t.specs[req.symbol], domain.volume)
            if not t.is_open(req.symbol, t.now()):
                raise Refused(c.TRADE_RETCODE_MARKET_CLOSED)
    except Refused as r:
        code, comment = r.retcode, _TEXT.get(r.retcode, "Request rejected")
    except FxgateError as e:
        code = retcode_for(e)
        comment = _TEXT.get(code, "Request rejected")
    free = acc.equity - margin
    level = float(acc.equity / margin * 100) if margin else 0.0
    return OrderCheckResult(
        code, float(acc.balance), float(acc.equity), float(acc.profit), float(margin),
        float(free), level, comment, req,
    )  # fmt: skip
