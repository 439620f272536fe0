"""The two code tables every client sees: error codes and WebSocket close codes.

Kept as data (like Centrifugo's ``errors.go`` and ``disconnect.go``) so that every
dialect and the REST layer answer with the same vocabulary, and so that a client
caused failure is a typed value, never an uncaught exception.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    AUTHENTICATION_ERROR = "AUTHENTICATION_ERROR"
    AUTHORIZATION_ERROR = "AUTHORIZATION_ERROR"
    RATE_LIMIT_ERROR = "RATE_LIMIT_ERROR"
    NOT_FOUND_ERROR = "NOT_FOUND_ERROR"
    TRADING_ERROR = "TRADING_ERROR"
    MARKET_CLOSED_ERROR = "MARKET_CLOSED_ERROR"
    INSUFFICIENT_BALANCE_ERROR = "INSUFFICIENT_BALANCE_ERROR"
    CONFLICT_ERROR = "CONFLICT_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


#: HTTP status for each error code (seed 003's table).
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.AUTHENTICATION_ERROR: 401,
    ErrorCode.AUTHORIZATION_ERROR: 403,
    ErrorCode.RATE_LIMIT_ERROR: 429,
    ErrorCode.NOT_FOUND_ERROR: 404,
    ErrorCode.TRADING_ERROR: 400,
    ErrorCode.MARKET_CLOSED_ERROR: 400,
    ErrorCode.INSUFFICIENT_BALANCE_ERROR: 400,
    ErrorCode.CONFLICT_ERROR: 409,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_SERVER_ERROR: 500,
}


class CloseCode(enum.IntEnum):
    """WebSocket close codes (DESIGN.md, "Close codes")."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    AUTHENTICATION = 4001
    FORBIDDEN = 4003
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029


class FxgateError(Exception):
    """An error a client caused or must be told about, with its code.

    ``details`` is JSON-serialisable and goes to the client as is, so it must never
    hold secrets.
    """

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: Any = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.status = status if status is not None else HTTP_STATUS[self.code]


class ValidationError(FxgateError):
    code = ErrorCode.VALIDATION_ERROR


class AuthenticationError(FxgateError):
    code = ErrorCode.AUTHENTICATION_ERROR


class AuthorizationError(FxgateError):
    code = ErrorCode.AUTHORIZATION_ERROR


class NotFoundError(FxgateError):
    code = ErrorCode.NOT_FOUND_ERROR


class RateLimitError(FxgateError):
    code = ErrorCode.RATE_LIMIT_ERROR


class TradingError(FxgateError):
    code = ErrorCode.TRADING_ERROR


class MarketClosedError(FxgateError):
    code = ErrorCode.MARKET_CLOSED_ERROR


class InsufficientBalanceError(FxgateError):
    code = ErrorCode.INSUFFICIENT_BALANCE_ERROR


class ConflictError(FxgateError):
    code = ErrorCode.CONFLICT_ERROR


# ---------------------------------------------------------------------------------------
# Trading refusals, in the one ``details`` shape docs/rest.md documents:
# ``{"field"?, "reason", ...context}``: ``field`` names the request field (always present
# on a VALIDATION_ERROR), ``reason`` is a stable snake_case code, and the rest are strings
# or numbers that let a trader act (the current ask, the volume step).


def invalid_field(field: str, message: str, reason: str, **context: Any) -> ValidationError:
    """The request itself is wrong in ``field`` (whatever the market does)."""
    return ValidationError(message, details={"field": field, "reason": reason, **context})


def refused(message: str, reason: str, *, field: str | None = None, **context: Any) -> TradingError:
    """A rule of the market or the broker refuses a well-formed request (MT5's invalid
    price or stops, no quotes, limits); ``field`` names the request field it is about."""
    details: dict[str, Any] = {"reason": reason, **context}
    if field is not None:
        details = {"field": field, **details}
    return TradingError(message, details=details)
