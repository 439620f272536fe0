"""``ApiHandler``: the one base class of every REST endpoint.

It turns an :class:`~fxgate.web.rest.registry.Operation` into HTTP: CORS, bearer
authentication and role check, the per-user rate limit, body and query validation,
seed 003's envelope on the way out, and a typed error for every failure. A subclass
names its ``path`` and declares methods with ``@op.get(...)``/``@op.post(...)``; it never
writes to the response itself::

    class StrategyHandler(ApiHandler):
        path = "/strategies/{strategy_id}"

        @op.get(summary="One of your strategies", response=Strategy)
        async def show(self, strategy_id: str) -> Strategy: ...

Failures are raised as ``FxgateError`` subclasses and answered as
``{success: false, error: {code, message, details}, timestamp}`` with the code's status.
Anything else is a bug: logged with the method and path (never headers, which carry
tokens, nor bodies, which carry passwords) and answered 500 with no detail.
"""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import Any, ClassVar

from tornado.web import HTTPError, RequestHandler

from fxgate.domain.errors import (
    HTTP_STATUS,
    AuthenticationError,
    AuthorizationError,
    ErrorCode,
    FxgateError,
    RateLimitError,
    ValidationError,
)
from fxgate.domain.roles import Role
from fxgate.domain.timefmt import iso_ms
from fxgate.services.auth.tokens import Claims
from fxgate.web.rest.context import RestContext
from fxgate.web.rest.models import PageQuery, Pagination
from fxgate.web.rest.parsing import parse_body, parse_query
from fxgate.web.rest.registry import OP_ATTR, Operation, Page, Raw, Reply

log = logging.getLogger(__name__)

#: Status -> code for errors raised as bare statuses; 400 is a malformed request here.
_STATUS_CODES = {
    **{status: code for code, status in reversed(HTTP_STATUS.items())},
    400: ErrorCode.VALIDATION_ERROR,
}
_ALLOWED_HEADERS = "Authorization, Content-Type, X-Requested-With"


def error_body(code: ErrorCode | str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "success": False,
        "error": {"code": str(code), "message": message, "details": details},
        "timestamp": iso_ms(),
    }


class ApiHandler(RequestHandler):
    #: The OpenAPI-style path template, ``{name}`` for a path parameter.
    path: ClassVar[str] = ""
    #: Mount points; ``/api/v1/health`` exists only under ``/api/v1`` (``/health`` is ops').
    prefixes: ClassVar[tuple[str, ...]] = ("", "/api/v1")
    #: The OpenAPI tag grouping this handler's operations.
    tag: ClassVar[str] = ""
    #: HTTP method -> (operation, name of the method implementing it).
    operations: ClassVar[dict[str, tuple[Operation, str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ops: dict[str, tuple[Operation, str]] = {}
        for name in dir(cls):
            op = getattr(getattr(cls, name, None), OP_ATTR, None)
            if isinstance(op, Operation):
                if op.method in ops:
                    raise TypeError(f"{cls.__name__}: two {op.method} operations")
                ops[op.method] = (op, name)
        cls.operations = ops

    def initialize(self, ctx: RestContext) -> None:
        self.ctx = ctx
        self.node = ctx.node
        self._claims: Claims | None = None

    # -- identity ------------------------------------------------------------------------

    @property
    def claims(self) -> Claims:
        """The verified token of this request (operations with a role only)."""
        if self._claims is None:
            raise AuthenticationError("Authentication required")
        return self._claims

    @property
    def user_id(self) -> str:
        return self.claims.sub

    @property
    def client_ip(self) -> str:
        return str(self.request.remote_ip or "")

    def require(self, role: Role) -> Claims:
        """The claims, if their role is at least ``role`` (for checks finer than the
        operation's own, such as "admins may see anyone's")."""
        claims = self.claims
        if not claims.role.at_least(role):
            raise AuthorizationError(
                f"This action needs the {role} role", details={"required": str(role)}
            )
        return claims

    async def _authenticate(self) -> Claims:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Authentication required: send Authorization: Bearer <token>")
        self._claims = await self.node.tokens.verify(token)
        return self._claims

    def _rate_limit(self, key: str) -> None:
        retry = self.ctx.user_limiter.hit(key)
        if retry is not None:
            limit = self.ctx.user_limiter.limit
            raise RateLimitError(
                f"Rate limit exceeded: {limit} requests per minute",
                details={"limit": limit, "window": 60, "retryAfter": retry},
            )

    async def _daily_quota(self, claims: Claims) -> None:
        """The tier's ``api_calls_per_day`` (seed 000's ``api_calls_remaining``), counted
        in the store for every worker and node (``fxgate.services.quota``)."""
        tier, terms = self.node.settings.tier(claims.tier)
        retry = await self.node.trading.usage.api_call(claims.sub, terms.api_calls_per_day)
        if retry is not None:
            quota = terms.api_calls_per_day
            raise RateLimitError(
                f"Daily quota exceeded: {quota} requests per day for the {tier} tier",
                details={"limit": quota, "window": 86_400, "tier": tier, "retryAfter": retry},
            )

    # -- dispatch ------------------------------------------------------------------------

    async def get(self, *args: str, **kwargs: str) -> None:
        await self._dispatch("GET", kwargs)

    async def post(self, *args: str, **kwargs: str) -> None:
        await self._dispatch("POST", kwargs)

    async def put(self, *args: str, **kwargs: str) -> None:
        await self._dispatch("PUT", kwargs)

    async def patch(self, *args: str, **kwargs: str) -> None:
        await self._dispatch("PATCH", kwargs)

    async def delete(self, *args: str, **kwargs: str) -> None:
        await self._dispatch("DELETE", kwargs)

    async def _dispatch(self, method: str, path_kwargs: dict[str, str]) -> None:
        try:
            entry = self.operations.get(method)
            if entry is None:
                raise FxgateError(
                    f"Method {method} not allowed here",
                    code=ErrorCode.NOT_FOUND_ERROR,
                    status=405,
                )
            op, name = entry
            await self._run(op, name, path_kwargs)
        except FxgateError as exc:
            if exc.status >= 500:
                # Ours, not the client's: keep the message for the operator, and show
                # a 500's caller nothing of the internals.
                log.error(
                    "REST request failed: %s",
                    exc.message,
                    extra={"method": method, "path": self.request.path, "code": str(exc.code)},
                )
                if exc.status == 500:
                    exc = FxgateError("Internal server error")
            self.send_fxgate_error(exc)
        except HTTPError as exc:
            self.send_fxgate_error(_from_http_error(exc))
        except Exception:
            log.exception(
                "REST handler failed", extra={"method": method, "path": self.request.path}
            )
            self.send_fxgate_error(FxgateError("Internal server error"))

    async def _run(self, op: Operation, name: str, kwargs: dict[str, Any]) -> None:
        self._apply_cors()
        if op.role is not None:
            claims = await self._authenticate()
            if op.scope is None or op.scope not in claims.scopes:
                self.require(op.role)
            if op.rate_limited:
                self._rate_limit(f"user:{claims.sub}")
                await self._daily_quota(claims)
        if op.query is not None:
            kwargs["query"] = parse_query(self.request.query_arguments, op.query)
        if op.body_models:
            kwargs["body"] = parse_body(self.request.body, op.body_models)
        result = await getattr(self, name)(**kwargs)
        self._reply(op, result, kwargs.get("query"))

    # -- replies -------------------------------------------------------------------------

    def _reply(self, op: Operation, result: Any, query: Any) -> None:
        if isinstance(result, Raw):
            self.set_status(result.status)
            self.set_header("Content-Type", result.content_type)
            body = result.body
            self.finish(body if isinstance(body, str | bytes) else _dumps(body))
            return
        status, message = op.status, None
        if isinstance(result, Reply):
            status = result.status or status
            message = result.message
            result = result.data
        if not op.envelope:
            self.write_json(status, op.dump(result))
            return
        envelope: dict[str, Any] = {"success": True}
        if isinstance(result, Page):
            assert isinstance(query, PageQuery)
            envelope["data"] = op.dump(list(result.items))
            envelope["pagination"] = Pagination(
                page=query.page,
                limit=query.limit,
                total=result.total,
                total_pages=-(-result.total // query.limit),
            ).model_dump(mode="json", by_alias=True)
        else:
            envelope["data"] = op.dump(result)
        if message is not None:
            envelope["message"] = message
        envelope["timestamp"] = iso_ms()
        self.write_json(status, envelope)

    def write_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(_dumps(body))

    def send_fxgate_error(self, exc: FxgateError) -> None:
        """Answer with the error envelope, dropping whatever the handler had set."""
        self.clear()
        self._apply_cors()
        if exc.status == 405:
            self.set_header("Allow", self._allow())
        if exc.status == 401:
            self.set_header("WWW-Authenticate", "Bearer")
        details = exc.details
        if exc.code == ErrorCode.RATE_LIMIT_ERROR and isinstance(details, dict):
            retry = details.get("retryAfter")
            if retry is not None:
                self.set_header("Retry-After", str(retry))
        self.write_json(exc.status, error_body(exc.code, exc.message, details))

    # -- what escapes dispatch (prepare, Tornado itself) ----------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, FxgateError):
            self.send_fxgate_error(exc)
            return
        if isinstance(exc, HTTPError):
            self.send_fxgate_error(_from_http_error(exc))
            return
        self.send_fxgate_error(
            FxgateError(
                "Internal server error" if status_code >= 500 else self._reason,
                code=_STATUS_CODES.get(status_code, ErrorCode.INTERNAL_SERVER_ERROR),
                status=status_code,
            )
        )

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Tornado's default logs repr(request), headers included: bearer tokens. Log
        # only what identifies the request, and only for server faults.
        if isinstance(value, FxgateError) and value.status < 500:
            return
        if isinstance(value, HTTPError) and value.status_code < 500:
            return
        log.error(
            "uncaught exception in REST handler",
            exc_info=(typ, value, tb) if typ is not None and value is not None else None,
            extra={"method": self.request.method, "path": self.request.path},
        )

    # -- CORS ----------------------------------------------------------------------------

    def _allowed_origin(self) -> str | None:
        origin = self.request.headers.get("Origin")
        if not origin:
            return None
        allowed = self.node.settings.server.cors_origins
        return origin if origin in allowed or "*" in allowed else None

    def _apply_cors(self) -> None:
        origin = self._allowed_origin()
        if origin is not None:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Expose-Headers", "Retry-After")
            self.add_header("Vary", "Origin")

    def _allow(self) -> str:
        return ", ".join([*self.operations, "OPTIONS"])

    async def options(self, *args: str, **kwargs: str) -> None:
        """CORS preflight: the methods this path has and the headers a client may send.
        A foreign origin gets 403, so a misconfigured dashboard sees why in the console."""
        self.set_header("Allow", self._allow())
        if self.request.headers.get("Origin") is None:
            self.set_status(204)
            self.finish()
            return
        if self._allowed_origin() is None:
            self.send_fxgate_error(AuthorizationError("Origin not allowed by server.cors_origins"))
            return
        self._apply_cors()
        self.set_header("Access-Control-Allow-Methods", self._allow())
        self.set_header("Access-Control-Allow-Headers", _ALLOWED_HEADERS)
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()


def _from_http_error(exc: HTTPError) -> FxgateError:
    """Tornado's own refusals: before any handler code ran, so always the client's."""
    if exc.status_code >= 500:
        return FxgateError("Internal server error", status=exc.status_code)
    if exc.status_code == 400:
        # A body Tornado could not parse (a broken multipart form): malformed input,
        # like malformed JSON, is a 422 naming the body.
        return ValidationError("Invalid request body", field="body", reason="body_invalid")
    if exc.status_code == 405:  # HEAD, which no operation declares
        return FxgateError("Method not allowed here", code=ErrorCode.NOT_FOUND_ERROR, status=405)
    code = _STATUS_CODES.get(exc.status_code, ErrorCode.VALIDATION_ERROR)
    return FxgateError(exc.reason or "Bad request", code=code, status=exc.status_code)


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
