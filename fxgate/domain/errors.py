"""The two code tables every client sees: error codes and WebSocket close codes.

Kept as data (like Centrifugo's ``errors.go`` and ``disconnect.go``) so that every
dialect and the REST layer answer with the same vocabulary, and so that a client
caused failure is a typed value, never an uncaught exception.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One row of the error table: what REST answers with and what a socket says."""

    status: int
    message: str


#: The error table (seed 003's codes and statuses): every dialect and the REST layer
#: answer with these codes; ``message`` is the default when an error gives none.
ERRORS: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.VALIDATION_ERROR: ErrorSpec(422, "Invalid request"),
    ErrorCode.AUTHENTICATION_ERROR: ErrorSpec(401, "Authentication required"),
    ErrorCode.AUTHORIZATION_ERROR: ErrorSpec(403, "Permission denied"),
    ErrorCode.RATE_LIMIT_ERROR: ErrorSpec(429, "Rate limit exceeded"),
    ErrorCode.NOT_FOUND_ERROR: ErrorSpec(404, "Not found"),
    ErrorCode.TRADING_ERROR: ErrorSpec(400, "Trading request refused"),
    ErrorCode.MARKET_CLOSED_ERROR: ErrorSpec(400, "Market closed"),
    ErrorCode.INSUFFICIENT_BALANCE_ERROR: ErrorSpec(400, "Insufficient balance"),
    ErrorCode.CONFLICT_ERROR: ErrorSpec(409, "Conflict"),
    ErrorCode.SERVICE_UNAVAILABLE: ErrorSpec(503, "Service unavailable"),
    ErrorCode.INTERNAL_SERVER_ERROR: ErrorSpec(500, "Internal server error"),
}

#: HTTP status for each error code, from the table.
HTTP_STATUS: dict[ErrorCode, int] = {code: spec.status for code, spec in ERRORS.items()}


class CloseCode(enum.IntEnum):
    """WebSocket close codes; every one the server sends is in :data:`DISCONNECTS`."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    AUTHENTICATION = 4001
    FORBIDDEN = 4003
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Why the server closes a connection: the close code, the close frame's reason
    text (under 123 bytes, RFC 6455) and whether a client should reconnect on its own.

    ``reconnect`` is the advice the docs give client authors (docs/protocol.md): True
    means "the same client may come back" (after a back-off, or with a fresh token);
    False means "reconnecting unchanged will be refused the same way".
    """

    code: CloseCode
    reason: str
    reconnect: bool


class Disconnects:
    """The close-code table (Centrifuge's ``disconnect.go`` is the model).

    Every ``kick`` names one of these, so a reason text lives in one place and the docs
    table (docs/protocol.md) is checked against it by a test.
    """

    SHUTDOWN = Disconnect(CloseCode.GOING_AWAY, "Server restarting", True)
    AUTH_FAILED = Disconnect(CloseCode.AUTHENTICATION, "Authentication failed", False)
    AUTH_TIMEOUT = Disconnect(CloseCode.AUTHENTICATION, "Authentication timeout", False)
    TOKEN_EXPIRED = Disconnect(CloseCode.AUTHENTICATION, "Token expired", True)
    KEY_RETIRED = Disconnect(CloseCode.AUTHENTICATION, "Signing key retired", True)
    USER_DISABLED = Disconnect(CloseCode.AUTHENTICATION, "User disabled", False)
    SLOW_CONSUMER = Disconnect(CloseCode.SLOW_CONSUMER, "Slow consumer", True)
    RATE_LIMITED = Disconnect(CloseCode.RATE_LIMITED, "Rate limit exceeded", True)
    TOO_MANY_CONNECTIONS = Disconnect(CloseCode.RATE_LIMITED, "Too many connections", True)

    @classmethod
    def all(cls) -> list[Disconnect]:
        return [v for v in vars(cls).values() if isinstance(v, Disconnect)]


class FxgateError(Exception):
    """An error a client caused or must be told about, with its code.

    ``details`` is JSON-serialisable and goes to the client as is, so it must never
    hold secrets.
    """

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        message: str | None = None,
        *,
        code: ErrorCode | None = None,
        details: Any = None,
        status: int | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if message is None:
            message = ERRORS[self.code].message
        super().__init__(message)
        self.message = message
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
