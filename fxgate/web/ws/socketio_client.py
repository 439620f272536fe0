"""One Socket.IO client: an Engine.IO connection and, once its CONNECT is accepted, its
session (seed 002's namespace layer: CONNECT with ``auth``, DISCONNECT, kicks)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from engineio import packet as eio_packet
from tornado.websocket import WebSocketClosedError

from fxgate.config.settings import Settings
from fxgate.domain.errors import (
    AuthenticationError,
    Disconnect,
    Disconnects,
    FxgateError,
    RateLimitError,
    ValidationError,
)
from fxgate.domain.errors import ErrorCode as Code
from fxgate.hub.connections import LiveConnection
from fxgate.node import Node
from fxgate.protocol import socketio as sio
from fxgate.protocol.socketio_session import SocketIOSession
from fxgate.web.ws.framing import framed
from fxgate.web.ws.socketio_conn import SioConnection
from fxgate.web.ws.writer import FrameWriter

if TYPE_CHECKING:
    from fxgate.web.ws.socketio import SocketIOEndpoint, SocketIOHandler

_SIO_FRAMED = framed(sio.SOCKETIO)

#: Refused CONNECTs (bad tokens) one Engine.IO connection may send before it is closed.
MAX_REFUSALS = 5


class Client:
    """One Engine.IO connection and, once its CONNECT is accepted, its session."""

    def __init__(self, endpoint: SocketIOEndpoint, sid: str, environ: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.sid = sid
        self.eio_socket: Any = endpoint.eio.sockets[sid]
        handler = environ.get("tornado.handler")
        # The request that opened it: a websocket one (websocket-only clients) or not.
        self.handler: SocketIOHandler | None = (
            handler if getattr(handler, "ws_connection", None) is not None else None
        )
        query = handler.request.query_arguments if handler is not None else {}
        token = query.get("token", [b""])[0]
        self.query_token = token.decode(errors="replace") if token else None
        self.remote = str(handler.request.remote_ip or "") if handler is not None else ""
        self.listed: LiveConnection | None = None
        self.conn = SioConnection(self)
        self.session: SocketIOSession | None = None
        self.closed = False
        self._kicking = False
        self._refusals = 0
        self._idle: asyncio.TimerHandle | None = None
        self._watch_idle()

    @property
    def node(self) -> Node:
        return self.endpoint.node

    @property
    def settings(self) -> Settings:
        return self.endpoint.node.settings

    def _watch_idle(self) -> None:
        """No accepted CONNECT within ``ws.auth_timeout``: the connection is closed."""
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self.node.settings.ws.auth_timeout, self._idle_out)

    def _idle_out(self) -> None:
        if self.session is None and not self.closed:
            self.close_transport(Disconnects.AUTH_TIMEOUT)

    # -- the library's events --------------------------------------------------

    def on_websocket(self) -> None:
        handler = self.handler or self.endpoint.upgrading.pop(self.sid, None)
        if handler is None or handler.ws_connection is None:
            return
        stream = handler.ws_connection.stream
        if stream is None:
            return
        self.handler = handler
        handler.client = self
        handler.set_nodelay(True)
        writer = FrameWriter(
            stream,
            self.endpoint.flusher,
            max_bytes=self.node.settings.ws.queue_max_bytes,
            kick=self.kick,
            principal=self.conn.principal,
            dialect=_SIO_FRAMED,
        )
        self.conn.use_writer(writer)

    def on_ping(self) -> None:
        """The library is sending its ping: the session notes where the user's streams
        stand, when everything delivered so far goes out ahead of it."""
        session = self.session
        if session is not None and session.acks is not None:
            session.acks.ping(self.conn.ahead_of_ping(), session.unsettled())

    def on_pong(self) -> None:
        session = self.session
        if session is not None and session.acks is not None:
            session.acks.pong()

    async def on_message(self, data: str | bytes) -> None:
        if self.closed:
            return
        if isinstance(data, str) and data[:1] == "0":
            await self._connect(data)
        elif isinstance(data, str) and data[:1] == "1":
            self._leave()
        elif self.session is not None:
            await self.session.on_packet(data)

    def on_disconnect(self) -> None:
        """The Engine.IO connection is gone (closed, timed out, or kicked)."""
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
        self._end_session()
        if self.conn.writer is not None:
            self.conn.writer.close()
        self.endpoint.clients.pop(self.sid, None)
        self.endpoint.upgrading.pop(self.sid, None)
        if self.conn.writer is None:
            # A polling client that said goodbye may still hold a GET open: answer it.
            self.eio_socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))

    # -- Socket.IO -------------------------------------------------------------

    async def _connect(self, data: str) -> None:
        try:
            cmd = sio.parse(data)
        except ValidationError as exc:
            self.conn.send(sio.connect_error(exc))
            return
        if not isinstance(cmd, sio.Connect) or self.session is not None:
            return
        if cmd.namespace != sio.NAMESPACE:
            err = ValidationError(
                "Invalid namespace", field="namespace", details={"namespace": cmd.namespace}
            )
            self.conn.send(b"44" + cmd.namespace.encode() + b"," + sio.connect_error(err)[2:])
            return
        node = self.node
        try:
            if node.stopping:
                raise FxgateError("Server restarting", code=Code.SERVICE_UNAVAILABLE)
            token = sio.token_of(cmd.auth) or self.query_token
            if token is None:
                raise AuthenticationError(
                    "Authentication required: connect with auth: {token} or ?token="
                )
            claims = await node.tokens.verify(token)
            if self.closed or self.session is not None:
                return
            if not node.connection_rate.hit(claims.sub):
                raise RateLimitError(Disconnects.TOO_MANY_CONNECTIONS.reason)
        except FxgateError as exc:
            self.conn.send(sio.connect_error(exc))
            self._refusals += 1
            if self._refusals >= MAX_REFUSALS:
                # Guessing tokens on one connection: it ends here.
                self.close_transport(Disconnects.AUTH_FAILED)
            return
        session = SocketIOSession(
            hub=node.hub,
            tokens=node.tokens,
            limits=node.settings.ws,
            conn=self.conn,
            connection_rate=node.connection_rate,
            timers=asyncio.get_running_loop(),
            lists=self.endpoint.lists,
            resume=node.resume,
        )
        self.session = session
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        node.sessions.add(session)
        self.conn.send(sio.connect_ok(session.session_id))
        session.start(claims)
        # Listed under its user (GET /auth/sessions); DELETE ends it through kick.
        self.listed = LiveConnection(
            endpoint="/socket.io/", claims=claims, close=self.kick, remote=self.remote
        )
        node.connections.add(self.listed)

    def _leave(self) -> None:
        """The client left the namespace (``socket.disconnect()``)."""
        self._end_session()
        self._watch_idle()

    def _end_session(self) -> None:
        if self.listed is not None:
            self.node.connections.discard(self.listed)
            self.listed = None
        session, self.session = self.session, None
        if session is not None:
            session.close()
            self.node.sessions.discard(session)

    def kick(self, disconnect: Disconnect) -> None:
        """End the Socket.IO connection as ``disconnect`` says, telling the client
        first (``disconnected``, then DISCONNECT). After a token's expiry the Engine.IO
        connection stays, so the client may CONNECT again with a new ``auth``;
        otherwise it is closed too.

        Done on the next loop iteration: a kick may come from inside the hub's fan-out
        (a writer over its bound), whose subscription index must not change under it.
        """
        if self.closed or self._kicking:
            return
        self._kicking = True
        asyncio.get_running_loop().call_soon(self._kick_now, disconnect)

    def _kick_now(self, disconnect: Disconnect) -> None:
        self._kicking = False
        if self.closed:
            return
        session = self.session
        if session is not None:
            self.conn.send(sio.disconnected(disconnect.reason, disconnect.reconnect))
            self.conn.send(sio.DISCONNECT)
            if session.acks is not None and disconnect is not Disconnects.SLOW_CONSUMER:
                # What is queued goes out before the close (close_transport flushes).
                session.acks.close_clean(session.unsettled())
            session.close()
            self.session = None
        if self.listed is not None:
            self.node.connections.discard(self.listed)
            self.listed = None
        if disconnect in (Disconnects.TOKEN_EXPIRED, Disconnects.KEY_RETIRED):
            self._forget(session)
            self._watch_idle()
            return
        self.close_transport(disconnect, session)

    def _forget(self, session: SocketIOSession | None) -> None:
        if session is not None:
            self.node.sessions.discard(session)

    def close_transport(
        self, disconnect: Disconnect, session: SocketIOSession | None = None
    ) -> None:
        handler = self.handler if self.conn.writer is not None else None
        if handler is not None:
            writer = self.conn.writer
            assert writer is not None
            if disconnect is not Disconnects.SLOW_CONSUMER:
                writer.flush_all_now()
            writer.close()
            with contextlib.suppress(WebSocketClosedError):
                handler.close(int(disconnect.code), disconnect.reason)
            self._forget(session)
            return
        self.endpoint.spawn(self._close_polling(session))

    async def _close_polling(self, session: SocketIOSession | None) -> None:
        """A polling client reads what is queued with its next GET: the session stays
        among the node's (so a shutdown waits, up to its grace) until it has."""
        sock = self.eio_socket
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sock.queue.join(), self.node.settings.server.shutdown_grace)
            with contextlib.suppress(Exception):
                await sock.close(wait=False, abort=False)
        finally:
            self._forget(session)
