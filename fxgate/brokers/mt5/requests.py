"""fxgate's trading requests as MT5 ``TradeRequest`` dicts, and retcodes as fxgate errors.

The constants are the package's own values (MT5.md), written here so that the native
package and the ``mt5linux`` bridge are driven alike. The ``comment`` carries a token
(at most 31 characters, the package's limit) that identifies the request: after a
timeout the adapter finds the order again by ``magic`` and that token, which is what
keeps an order from being sent twice. With a ``clientOrderId`` the token is a hash of
it (collision-safe at 100 bits, the full id stays on fxgate's side); without one, a
random token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from decimal import Decimal
from typing import Any

from fxgate.domain.errors import (
    FxgateError,
    InsufficientBalanceError,
    MarketClosedError,
    TradingError,
    ValidationError,
)
from fxgate.domain.trading import OrderRequest, OrderType, Side, TimeInForce

TRADE_ACTION_DEAL = 1
TRADE_ACTION_PENDING = 5
TRADE_ACTION_SLTP = 6
TRADE_ACTION_MODIFY = 7
TRADE_ACTION_REMOVE = 8
ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN = 0, 1, 2
ORDER_TIME_GTC = 0
ORDER_TIME_SPECIFIED = 2
#: SymbolInfo.filling_mode bits (the package does not export their names reliably).
SYMBOL_FILLING_FOK, SYMBOL_FILLING_IOC = 1, 2

DONE = frozenset({0, 10008, 10009, 10010})  # 0: order_check's "no objection"
RETRY = frozenset({10004, 10020, 10021})  # requote, prices changed, no quotes
RETRIES = 3
COMMENT_PREFIX = "fxg:"
MAX_COMMENT = 31

_TYPES = {
    (OrderType.MARKET, Side.BUY): 0,
    (OrderType.MARKET, Side.SELL): 1,
    (OrderType.LIMIT, Side.BUY): 2,
    (OrderType.LIMIT, Side.SELL): 3,
    (OrderType.STOP, Side.BUY): 4,
    (OrderType.STOP, Side.SELL): 5,
    (OrderType.STOP_LIMIT, Side.BUY): 6,
    (OrderType.STOP_LIMIT, Side.SELL): 7,
}


def token(client_order_id: str | None) -> str:
    """The comment that names one request (see the module docstring)."""
    if client_order_id is None:
        raw = secrets.token_bytes(13)
    else:
        raw = hashlib.sha256(client_order_id.encode()).digest()[:13]
    tok = COMMENT_PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()
    assert len(tok) <= MAX_COMMENT
    return tok


def filling(allowed: int, tif: TimeInForce, pending: bool) -> int:
    """The filling mode to send: what the client asked for when the symbol allows it,
    else one the symbol allows (a disallowed mode is retcode 10030)."""
    if tif is TimeInForce.FOK and allowed & SYMBOL_FILLING_FOK:
        return ORDER_FILLING_FOK
    if tif is TimeInForce.IOC and allowed & SYMBOL_FILLING_IOC:
        return ORDER_FILLING_IOC
    if pending or (tif is TimeInForce.GTC and not allowed):
        return ORDER_FILLING_RETURN
    if allowed & SYMBOL_FILLING_FOK:
        return ORDER_FILLING_FOK
    if allowed & SYMBOL_FILLING_IOC:
        return ORDER_FILLING_IOC
    return ORDER_FILLING_RETURN


def f(value: Decimal | None) -> float:
    return float(value) if value is not None else 0.0


def trade_request(
    request: OrderRequest,
    *,
    price: Decimal | None,
    stop_price: Decimal | None,
    market_price: float,
    allowed_filling: int,
    magic: int,
    deviation: int,
    comment: str,
    expires_at: float | None = None,
) -> dict[str, Any]:
    """``price``/``stop_price`` as fxgate keeps them (limit, trigger); MT5 wants the
    trigger of a stop-limit in ``price`` and its limit in ``stoplimit``. A GTD order
    (``expires_at``, checked by ``check_expiry``) is ``ORDER_TIME_SPECIFIED`` with its
    ``expiration`` in whole epoch seconds, as the package takes it."""
    pending = request.type is not OrderType.MARKET
    if request.type is OrderType.STOP_LIMIT:
        mt5_price, stoplimit = f(stop_price), f(price)
    elif pending:
        mt5_price, stoplimit = f(price), 0.0
    else:
        mt5_price, stoplimit = market_price, 0.0
    return {
        "action": TRADE_ACTION_PENDING if pending else TRADE_ACTION_DEAL,
        "magic": magic,
        "symbol": request.symbol,
        "volume": float(request.volume),
        "price": mt5_price,
        "stoplimit": stoplimit,
        "sl": f(request.stop_loss),
        "tp": f(request.take_profit),
        "deviation": deviation,
        "type": _TYPES[(request.type, request.side)],
        "type_filling": filling(allowed_filling, request.time_in_force, pending),
        "type_time": ORDER_TIME_GTC if expires_at is None else ORDER_TIME_SPECIFIED,
        "expiration": 0 if expires_at is None else int(expires_at),
        "comment": comment,
    }


def error_for(retcode: int, text: str) -> FxgateError:
    """The fxgate error for a refusing retcode, with the terminal's own words."""
    ctx: dict[str, Any] = {"retcode": retcode, "terminal": text}
    if retcode == 10019:
        return InsufficientBalanceError(
            "Not enough free margin for this order",
            details={"reason": "insufficient_margin", **ctx},
        )
    if retcode == 10018:
        return MarketClosedError(
            "The market is closed for this symbol", details={"reason": "market_closed", **ctx}
        )
    if retcode == 10014:
        return ValidationError(
            "Invalid volume", field="volume", reason="invalid_volume", details=ctx
        )
    # 10015/10016 are the market refusing a well-formed price (the port's rule, as the
    # paper broker): TRADING_ERROR naming the field.
    if retcode == 10015:
        return TradingError(
            "Invalid price", details={"field": "price", "reason": "invalid_price", **ctx}
        )
    if retcode == 10016:
        return TradingError(
            "Invalid stops", details={"field": "stopLoss", "reason": "invalid_stops", **ctx}
        )
    if retcode == 10022:
        return ValidationError(
            "Invalid expiration", field="expiresAt", reason="invalid_expiration", details=ctx
        )
    if retcode == 10027:
        return TradingError(
            "AutoTrading is disabled in the terminal",
            details={"reason": "autotrading_disabled", **ctx},
        )
    if retcode in RETRY:
        return TradingError(
            "The price moved and the order was not filled; try again",
            details={"reason": "requote", **ctx},
        )
    if retcode == 10030:
        return TradingError(
            "The symbol does not allow this filling mode",
            details={"reason": "unsupported_filling", **ctx},
        )
    if retcode == 10031:
        return TradingError(
            "The terminal has no connection to the trade server",
            details={"reason": "no_connection", **ctx},
        )
    return TradingError(
        f"The trade server refused the request: {text}",
        details={"reason": "rejected", **ctx},
    )


def terminal_down(reason: str) -> TradingError:
    """Orders are refused, never queued, while the terminal cannot be reached."""
    return TradingError(
        "The MetaTrader 5 terminal is not connected; the order was not sent",
        details={"reason": "terminal_unavailable", "terminal": reason},
    )
