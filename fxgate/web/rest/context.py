"""What every REST handler shares: the node, the services, and the per-process limits.

Built once per application by :func:`fxgate.web.rest.routes.rest_routes` and handed to
each handler through Tornado's ``initialize``, so the handlers hold no module globals
and two apps in one process (the tests) never share a rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fxgate.node import Node
from fxgate.services.auth.apikeys import ApiKeyService
from fxgate.services.auth.sessions import SessionService
from fxgate.services.strategies import StrategyService
from fxgate.web.rest.ratelimit import RateLimiter


@dataclass
class RestContext:
    node: Node
    sessions: SessionService
    api_keys: ApiKeyService
    strategies: StrategyService
    user_limiter: RateLimiter
    login_limiter: RateLimiter
    #: The handler classes served, for the OpenAPI document (set by ``rest_routes``).
    handlers: tuple[type[Any], ...] = ()
    openapi: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, node: Node) -> RestContext:
        s = node.settings
        store = node.store
        api_keys = ApiKeyService(
            store.api_keys, store.audit, sealer=node.sealer, window=s.auth.signature_window
        )
        return cls(
            node=node,
            sessions=SessionService(
                store.users,
                store.sessions,
                store.audit,
                node.tokens,
                api_keys,
                access_ttl=s.auth.access_token_ttl,
                refresh_ttl=s.auth.refresh_token_ttl,
            ),
            api_keys=api_keys,
            strategies=StrategyService(store.strategies, store.audit),
            user_limiter=RateLimiter(s.server.rate_limit_per_minute),
            login_limiter=RateLimiter(s.auth.login_attempts_per_minute),
        )
