"""The REST routes, mounted at ``/`` and at ``/api/v1/`` alike (DESIGN.md, "REST API").

Each feature module lists its handler classes in ``HANDLERS``; adding a module's tuple
to :data:`HANDLER_GROUPS` both serves and documents it (``/openapi.json`` is built from
the same list).
"""

from __future__ import annotations

import re
from typing import Any

from fxgate.node import Node
from fxgate.web.rest import (
    admin,
    apikeys,
    auth,
    health,
    market,
    openapi,
    sessions,
    signals,
    strategies,
    trading,
)
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.context import RestContext

HANDLER_GROUPS: tuple[tuple[type[ApiHandler], ...], ...] = (
    auth.HANDLERS,
    sessions.HANDLERS,
    apikeys.HANDLERS,
    market.HANDLERS,
    strategies.HANDLERS,
    signals.HANDLERS,
    trading.HANDLERS,
    admin.HANDLERS,
    health.HANDLERS,
    openapi.HANDLERS,
)

_PARAM = re.compile(r"{(\w+)}")


def url_pattern(prefix: str, path: str) -> str:
    """``/strategies/{strategy_id}`` -> ``/api/v1/strategies/(?P<strategy_id>[^/]+)/?``."""
    parts = _PARAM.split(path)
    out = []
    for i, part in enumerate(parts):
        out.append(f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part))
    return prefix + "".join(out) + "/?"


def rest_routes(
    node: Node, extra: tuple[type[ApiHandler], ...] = ()
) -> list[tuple[str, type[ApiHandler], dict[str, Any]]]:
    """Tornado routes for every REST handler (plus ``extra``), both prefixes each."""
    handlers = tuple(h for group in HANDLER_GROUPS for h in group) + extra
    ctx = RestContext.build(node)
    ctx.handlers = handlers
    routes = []
    for handler in handlers:
        for prefix in handler.prefixes:
            routes.append((url_pattern(prefix, handler.path), handler, {"ctx": ctx}))
    return routes
