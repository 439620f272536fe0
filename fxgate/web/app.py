"""The Tornado application: routes for every endpoint of DESIGN.md."""

from __future__ import annotations

from typing import Any

import tornado.web
import ujson

from fxgate.domain.errors import ErrorCode
from fxgate.node import Node
from fxgate.web.ops import HealthHandler, MetricsHandler, ReadyHandler, metrics_registry
from fxgate.web.rest.base import error_body
from fxgate.web.rest.routes import rest_routes
from fxgate.web.ws.canonical import CanonicalSocket
from fxgate.web.ws.writer import Flusher


class NotFound(tornado.web.RequestHandler):
    """Unknown paths answer in the REST envelope, not Tornado's HTML page."""

    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        body = error_body(
            ErrorCode.NOT_FOUND_ERROR, "No such endpoint", {"path": self.request.path}
        )
        self.finish(ujson.dumps(body))


def make_app(node: Node) -> tornado.web.Application:
    flusher = Flusher()
    ws: dict[str, Any] = {"node": node, "flusher": flusher}
    routes: list[Any] = [
        (r"/api/ws/?", CanonicalSocket, ws),
        (r"/health", HealthHandler, {"node": node}),
        (r"/ready", ReadyHandler, {"node": node}),
        (r"/metrics", MetricsHandler, {"registry": metrics_registry(node)}),
    ]
    routes.extend(rest_routes(node))
    builtin = {r[0] for r in routes}
    for result in node.pm.hook.register_routes(api=node.api):
        for route in result or ():
            if route[0] in builtin:
                raise ValueError(f"a plugin route shadows the built-in {route[0]!r}")
            routes.append(route)
    return tornado.web.Application(
        routes,
        fxgate_node=node,
        fxgate_api=node.api,
        fxgate_flusher=flusher,
        xheaders=node.settings.server.xheaders,
        compress_response=False,
        default_handler_class=NotFound,
        websocket_max_message_size=node.settings.ws.max_frame_size,
    )
