"""The two code tables every client sees: error codes and WebSocket close codes.

Kept as data (like Centrifugo's ``errors.go`` and ``disconnect.go``) so that every
dialect and the REST layer answer with the same vocabulary, and so that a client
caused failure is a typed value, never an uncaught exception.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
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
    SESSION_ENDED = Disconnect(CloseCode.AUTHENTICATION, "Session ended", False)
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
    """The request is malformed in one field; ``details`` always names it.

    ``details`` is one object, ``{"field", "reason"?, ...context}``, over REST and every
    socket alike, so a client can point at the field without parsing the message. When a
    body has several problems at once, ``errors`` lists each as ``{field, message, type}``
    and ``field`` is the first of them. A socket frame that is wrong as a whole (not JSON,
    binary, too large) names ``frame``; a REST body that is wrong as a whole, ``body``.
    """

    code = ErrorCode.VALIDATION_ERROR

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        status: int | None = None,
    ) -> None:
        body: dict[str, Any] = {"field": field}
        if reason is not None:
            body["reason"] = reason
        if details:
            body.update(details)
        if errors is not None:
            body["errors"] = [dict(e) for e in errors]
        super().__init__(message, details=body, status=status)
        self.field = field


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
    return ValidationError(message, field=field, reason=reason, details=context)


def refused(message: str, reason: str, *, field: str | None = None, **context: Any) -> TradingError:
    """A rule of the market or the broker refuses a well-formed request (MT5's invalid
    price or stops, no quotes, limits); ``field`` names the request field it is about."""
    details: dict[str, Any] = {"reason": reason, **context}
    if field is not None:
        details = {"field": field, **details}
    return TradingError(message, details=details)
