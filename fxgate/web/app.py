"""The Tornado application: routes for every endpoint of DESIGN.md."""

from __future__ import annotations

from typing import Any

import tornado.web
import ujson

from fxgate.domain.errors import ErrorCode
from fxgate.node import Node
from fxgate.web.ops import HealthHandler, MetricsHandler, ReadyHandler, metrics_registry
from fxgate.web.rest.base import ApiHandler, error_body
from fxgate.web.rest.routes import rest_routes
from fxgate.web.ws.canonical import CanonicalSocket
from fxgate.web.ws.dashboard import DashboardCollector, Dashboards, DashboardSocket
from fxgate.web.ws.seed003 import seed003_route
from fxgate.web.ws.seed004 import seed004_routes
from fxgate.web.ws.socketio import SocketIOEndpoint, SocketIOHandler
from fxgate.web.ws.writer import Flusher

#: Every method some handler implements; Tornado refuses others before any handler runs.
_METHODS = tornado.web.RequestHandler.SUPPORTED_METHODS


class _EnvelopeErrors(tornado.web.RequestHandler):
    """A fallback handler: answers in the REST envelope, and a client's mistake (a
    broken body, an odd method) is not a server error worth a traceback in the log."""

    def answer(self, status: int, code: ErrorCode, message: str, details: Any = None) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(ujson.dumps(error_body(code, message, details)))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.clear()
        if status_code >= 500:
            self.answer(status_code, ErrorCode.INTERNAL_SERVER_ERROR, "Internal server error")
        else:
            details = [{"field": "body", "message": "Unreadable body", "type": "body_invalid"}]
            self.answer(422, ErrorCode.VALIDATION_ERROR, "Invalid request", details)

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        super().log_exception(typ, value, tb)


class NotFound(_EnvelopeErrors):
    """Unknown paths answer in the REST envelope, not Tornado's HTML page."""

    def initialize(self) -> None:
        # Whatever the method: an unknown path is a 404, not a 405.
        self.SUPPORTED_METHODS = (self.request.method or "GET",)

    def prepare(self) -> None:
        self.clear()
        self.answer(404, ErrorCode.NOT_FOUND_ERROR, "No such endpoint", {"path": self.request.path})


class MethodNotAllowed(_EnvelopeErrors):
    """A method the path's handler does not have: 405 with ``Allow``, in the envelope
    (Tornado would answer an HTML page without ``Allow``)."""

    def initialize(self, allow: str) -> None:
        self.allow = allow
        self.SUPPORTED_METHODS = (self.request.method or "GET",)

    def prepare(self) -> None:
        message = f"Method {self.request.method} not allowed here"
        self.answer(405, ErrorCode.NOT_FOUND_ERROR, message, {"allow": self.allow.split(", ")})

    def answer(self, status: int, code: ErrorCode, message: str, details: Any = None) -> None:
        self.set_header("Allow", self.allow)
        super().answer(status, code, message, details)


def allowed_methods(handler: type[tornado.web.RequestHandler]) -> list[str] | None:
    """The methods ``handler`` answers; None when it answers every method Tornado
    knows itself (REST handlers, whose 405 names their operations)."""
    if issubclass(handler, ApiHandler):
        return None
    base = tornado.web.RequestHandler
    return [m for m in _METHODS if getattr(handler, m.lower()) is not getattr(base, m.lower())]


class FxgateApplication(tornado.web.Application):
    """Sends a request for a method its handler lacks to :class:`MethodNotAllowed`."""

    def get_handler_delegate(
        self,
        request: Any,
        target_class: type[tornado.web.RequestHandler],
        target_kwargs: dict[str, Any] | None = None,
        path_args: list[bytes] | None = None,
        path_kwargs: dict[str, bytes] | None = None,
    ) -> Any:
        method = request.method or ""
        if target_class is not NotFound:
            allowed = allowed_methods(target_class)
            if method not in (allowed if allowed is not None else _METHODS):
                allow = ", ".join(allowed or [*target_class.operations, "OPTIONS"])  # type: ignore[attr-defined]
                return super().get_handler_delegate(
                    request, MethodNotAllowed, {"allow": allow}, path_args, path_kwargs
                )
        return super().get_handler_delegate(
            request, target_class, target_kwargs, path_args, path_kwargs
        )


def make_app(node: Node) -> tornado.web.Application:
    flusher = Flusher(node.bus.expecting)
    ws: dict[str, Any] = {"node": node, "flusher": flusher}
    dashboards = Dashboards(node)
    registry = metrics_registry(node)
    registry.register(DashboardCollector(dashboards))
    routes: list[Any] = [
        (r"/api/ws/?", CanonicalSocket, ws),
        # Seed 002's Socket.IO (docs/dialects.md).
        (r"/socket\.io/?", SocketIOHandler, {"endpoint": SocketIOEndpoint(node, flusher)}),
        (r"/ws/dashboard/?", DashboardSocket, {**ws, "dashboards": dashboards}),
        seed003_route(node, flusher),
        (r"/health", HealthHandler, {"node": node}),
        (r"/ready", ReadyHandler, {"node": node}),
        (r"/metrics", MetricsHandler, {"registry": registry}),
    ]
    rest = rest_routes(node)
    routes.extend(rest)
    # Seed 004's sockets log in with the REST API-key login's own service.
    routes.extend(seed004_routes(node, flusher, rest[0][2]["ctx"].sessions))
    builtin = {r[0] for r in routes}
    for result in node.pm.hook.register_routes(api=node.api):
        for route in result or ():
            if route[0] in builtin:
                raise ValueError(f"a plugin route shadows the built-in {route[0]!r}")
            routes.append(route)
    return FxgateApplication(
        routes,
        fxgate_node=node,
        fxgate_api=node.api,
        fxgate_flusher=flusher,
        xheaders=node.settings.server.xheaders,
        compress_response=False,
        default_handler_class=NotFound,
        websocket_max_message_size=node.settings.ws.max_frame_size,
    )
