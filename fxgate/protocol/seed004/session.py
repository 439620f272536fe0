"""What seed 004's two sessions share: the canonical input limits, errors, closing.

Like the canonical :class:`fxgate.protocol.session.Session` the sessions do no I/O: the
transport hands them frames and they answer through the ``Connection`` they were given,
keeping time through the injected ``Timers``. They hold no trading logic. Every
client-caused failure is an error message and the connection stays, except a refused
login (4001), a flood (4029) and shutdown (1001, after seed 004's shutdown notice).
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import Disconnect, Disconnects, FxgateError, RateLimitError
from fxgate.hub.hub import Hub
from fxgate.plugins.channel import Principal
from fxgate.protocol.canonical import load_object
from fxgate.protocol.guard import InputGuard, Verdict, check_size
from fxgate.protocol.seed004 import common
from fxgate.protocol.session import Connection, Timers
from fxgate.services.auth.tokens import Claims

log = logging.getLogger(__name__)


class Seed004Session(ABC):
    """Limits, errors, closing: what both sessions do alike."""

    def __init__(self, *, hub: Hub, limits: WsSettings, conn: Connection, timers: Timers) -> None:
        self.hub = hub
        self.limits = limits
        self.conn = conn
        self.session_id = "session_" + uuid.uuid4().hex[:16]
        self.principal: Principal | None = None
        #: What the node's kicks look at (disabled users, retired signing keys).
        self.claims: Claims | None = None
        self._timers = timers
        self._guard = InputGuard(limits, timers.time)
        self.closing = False
        self.closed = False

    def disconnect(self, disconnect: Disconnect, notice: bytes | None = None) -> None:
        """Close for ``disconnect``. Shutdown is announced in seed 004's own format,
        whatever notice the caller (written for the canonical dialect) passed."""
        if self.closed or self.closing:
            return
        self.closing = True
        if disconnect is Disconnects.SHUTDOWN:
            notice = common.shutdown_notice()
        if notice is not None:
            self.conn.send(notice)
        self.conn.kick(disconnect)

    def shutdown_notice(self, canonical_notice: bytes) -> bytes:
        """Seed 004's own notice before close 1001 (``fxgate.ops.serve``)."""
        return common.shutdown_notice()

    async def on_message(self, raw: str | bytes) -> None:
        if self.closed or self.closing:
            return
        verdict = self._guard.admit()
        if verdict is not Verdict.OK:
            if verdict is Verdict.KICK:
                self.disconnect(Disconnects.RATE_LIMITED)
            elif verdict is Verdict.TELL:
                limit = self.limits.max_messages_per_second
                exc = RateLimitError(
                    "Rate limit exceeded", details={"limit": limit, "per": "second"}
                )
                self.conn.send(common.error(exc))
            return
        rid: str | None = None
        try:
            check_size(raw, self.limits)
            msg = load_object(raw)
            rid = common.request_id(msg)
            await self._handle(msg, rid)
        except FxgateError as exc:
            self.conn.send(common.error(exc, rid))
        except Exception:
            log.exception("seed 004 session error", extra={"session": self.session_id})
            self.conn.send(common.error(FxgateError("Internal error"), rid))

    @abstractmethod
    async def _handle(self, msg: Mapping[str, Any], rid: str | None) -> None:
        """One parsed client message: each endpoint's own requests."""

    def close(self) -> None:
        self.closed = True
