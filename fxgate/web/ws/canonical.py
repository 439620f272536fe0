"""``/api/ws``: seed 001's protocol over Tornado's WebSocket handler.

Tornado owns the handshake, reading, pings and close; authentication before the
upgrade answers 401/429 as plain HTTP, and after it everything goes through the
session and the frame writer. For the dialects that resume without offsets, each
periodic ping carries a token and its pong tells the session what the client has
provably read (``fxgate.hub.acks``); a kick that flushed first is a clean close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlparse

import ujson
from tornado.websocket import (
    WebSocketClosedError,
    WebSocketHandler,
    WebSocketProtocol,
    WebSocketProtocol13,
)

from fxgate.domain.errors import (
    ERRORS,
    AuthenticationError,
    Disconnect,
    Disconnects,
    ErrorCode,
)
from fxgate.domain.roles import Role
from fxgate.domain.timefmt import iso_ms
from fxgate.hub.acks import Acks
from fxgate.hub.connections import LiveConnection
from fxgate.hub.sink import Dialect
from fxgate.node import Node
from fxgate.plugins.channel import Principal
from fxgate.protocol.canonical import CANONICAL
from fxgate.protocol.session import Session
from fxgate.services.auth.tokens import Claims
from fxgate.web.ws.framing import framed
from fxgate.web.ws.writer import Flusher, FrameWriter

log = logging.getLogger(__name__)

ANONYMOUS = Principal("", Role.VIEWER)


def bearer_token(handler: Any) -> str | None:
    """The token from ``?token=`` or ``Authorization: Bearer``, if any."""
    token = handler.get_query_argument("token", None)
    if token:
        return str(token)
    header = str(handler.request.headers.get("Authorization", ""))
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class _NotedPings(WebSocketProtocol13):
    """Tornado's protocol, telling its handler as it writes each periodic ping, so
    that the ping carries the token its pong will echo (``fxgate.hub.acks``)."""

    def write_ping(self, data: bytes) -> None:
        handler = self.handler
        token = handler.note_ping() if isinstance(handler, SocketBase) else None
        super().write_ping(data if token is None else token)


class SocketBase(WebSocketHandler):
    """What every dialect's socket shares: pre-upgrade auth, limits, writer, shutdown."""

    #: The dialect's encoder (payloads); the transport frames them (``framed``).
    dialect: Dialect = CANONICAL
    #: Whether a connection without a token may authenticate with its first message.
    first_message_auth = True

    def initialize(self, node: Node, flusher: Flusher) -> None:
        self.node = node
        self.flusher = flusher
        self.claims: Claims | None = None
        self.session: Session | None = None
        self.writer: FrameWriter | None = None
        #: This socket's entry in the node's connection registry, once authenticated.
        self.listed: LiveConnection | None = None

    # Tornado's settings-driven limits, from our config.
    @property
    def max_message_size(self) -> int:
        return self.node.settings.ws.max_frame_size

    @property
    def ping_interval(self) -> float | None:
        return self.node.settings.ws.ping_interval

    @property
    def ping_timeout(self) -> float | None:
        return self.node.settings.ws.ping_timeout

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        protocol = super().get_websocket_protocol()
        if type(protocol) is WebSocketProtocol13:
            protocol.__class__ = _NotedPings
        return protocol

    # -- what the client provably read (resume without offsets) -----------------

    def resume_acks(self) -> Acks | None:
        """The session's acknowledgements, where its dialect resumes without offsets."""
        return self.session.acks if self.session is not None else None

    def delivered(self) -> bool:
        """Whether every event the hub gave this connection is in its writer (a
        dialect that batches in front of the writer says otherwise while it holds some)."""
        return True

    def note_ping(self) -> bytes | None:
        """A ping is being written: what is queued goes ahead of it, and the session
        notes where the user's streams stand; the token its pong must echo."""
        acks = self.resume_acks()
        if acks is None or self.writer is None:
            return None
        trusted = self.writer.flush_for_ping() and self.delivered()
        return acks.ping(trusted)

    def on_pong(self, data: bytes) -> None:
        acks = self.resume_acks()
        if acks is not None:
            acks.pong(data)

    def check_origin(self, origin: str) -> bool:
        # Tokens, not cookies, authenticate sockets, so a foreign page gains nothing;
        # an operator may still pin the dashboards' origins.
        allowed = self.node.settings.server.cors_origins
        if not allowed or "*" in allowed:
            return True
        parsed = urlparse(origin)
        return f"{parsed.scheme}://{parsed.netloc}" in allowed

    def _refuse(self, code: ErrorCode, message: str) -> None:
        """Refuse the upgrade with plain HTTP: the status is the error table's."""
        self.set_status(ERRORS[code].status)
        self.set_header("Content-Type", "application/json")
        self.finish(
            ujson.dumps(
                {"type": "error", "code": str(code), "message": message, "timestamp": iso_ms()}
            )
        )

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.node.stopping:
            self._refuse(ErrorCode.SERVICE_UNAVAILABLE, "Server restarting")
            return
        token = bearer_token(self)
        if token is not None:
            try:
                self.claims = await self.node.tokens.verify(token)
            except AuthenticationError as exc:
                self._refuse(exc.code, exc.message)
                return
            if not self.node.connection_rate.hit(self.claims.sub):
                self._refuse(ErrorCode.RATE_LIMIT_ERROR, Disconnects.TOO_MANY_CONNECTIONS.reason)
                return
        elif not self.first_message_auth:
            self._refuse(ErrorCode.AUTHENTICATION_ERROR, "Authentication required")
            return
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        assert self.ws_connection is not None
        self.set_nodelay(True)
        stream = self.ws_connection.stream
        assert stream is not None
        self.writer = FrameWriter(
            stream,
            self.flusher,
            max_bytes=self.node.settings.ws.queue_max_bytes,
            kick=self.kick,
            principal=ANONYMOUS,
            # One framed encoder per dialect, shared: the hub frames each event once.
            dialect=framed(self.dialect),
        )
        self.session = self.make_session(self.writer)
        # Every dialect's socket is listed under its user once authenticated (before
        # whatever the dialect's own session asked to be told).
        own = self.session.on_authenticated

        def authenticated(session: Session) -> None:
            self.register_live(session.claims, session.disconnect)
            if own is not None:
                own(session)

        self.session.on_authenticated = authenticated
        self.node.sessions.add(self.session)
        self.session.start(self.claims)

    def make_session(self, writer: FrameWriter) -> Session:
        """The dialect's session over ``writer`` (seed 001's here)."""
        return Session(
            hub=self.node.hub,
            tokens=self.node.tokens,
            limits=self.node.settings.ws,
            conn=writer,
            dialect=self.dialect,
            connection_rate=self.node.connection_rate,
            timers=asyncio.get_running_loop(),
        )

    async def on_message(self, message: str | bytes) -> None:
        if self.session is not None:
            await self.session.on_message(message)

    def register_live(self, claims: Claims | None, close: Any, api_key: str | None = None) -> None:
        """List this socket under its user (``GET /auth/sessions``) once authenticated;
        ``close(disconnect)`` is how ``DELETE /auth/sessions/:id`` ends it."""
        if claims is None or self.listed is not None:
            return
        self.listed = LiveConnection(
            endpoint=self.request.path,
            claims=claims,
            close=close,
            remote=str(self.request.remote_ip or ""),
            api_key=api_key,
        )
        self.node.connections.add(self.listed)

    def unregister_live(self) -> None:
        if self.listed is not None:
            self.node.connections.discard(self.listed)
            self.listed = None

    def on_close(self) -> None:
        self.unregister_live()
        if self.writer is not None:
            self.writer.close()
        if self.session is not None:
            self.session.close()
            self.node.sessions.discard(self.session)

    def kick(self, disconnect: Disconnect) -> None:
        """Close as ``disconnect`` says; what is already queued is sent first (except
        to a slow consumer, whose queue is what got it closed)."""
        if self.writer is not None and disconnect is not Disconnects.SLOW_CONSUMER:
            self.writer.flush_all_now()
            acks = self.resume_acks()
            if acks is not None and not self.writer.closed and self.delivered():
                acks.close_clean()  # flushed: the client gets what was written up to here
        if self.writer is not None:
            self.writer.close()
        with contextlib.suppress(WebSocketClosedError):
            self.close(int(disconnect.code), disconnect.reason)


class CanonicalSocket(SocketBase):
    """Seed 001's ``/api/ws``."""
