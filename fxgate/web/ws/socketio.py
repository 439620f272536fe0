"""``/socket.io/``: seed 002's Socket.IO endpoint, python-engineio below, fxgate above.

The split (docs/dialects.md, "/socket.io/ (seed 002)"):

- **python-engineio** (``async_mode="tornado"``) owns Engine.IO v4: the handshake with
  ``pingInterval``/``pingTimeout``/``maxPayload``, HTTP long-polling, the polling to
  websocket upgrade (probe, ``5``), websocket-only clients, pings and their timeout,
  CORS for polling. Its Tornado handler is reproduced here (:class:`SocketIOHandler`)
  so that fxgate's limits and origin rule apply and compression stays off.
- **python-socketio**'s packet codec decodes what clients send (``fxgate.protocol.socketio``);
  the Socket.IO namespace layer (CONNECT with ``auth``, events, DISCONNECT) is
  fxgate's, so auth, limits and subscriptions are the canonical session's.
- **Delivery is fxgate's.** A client on the websocket transport gets a
  :class:`~fxgate.web.ws.writer.FrameWriter` on the Tornado stream the library holds,
  the moment the library marks the socket upgraded (:class:`_WatchedSocket`); from
  then on the hub's shared frames (``42[...]`` framed once per event) go straight to
  it, like every other dialect, and the library's own writer only carries its pings.
  A polling client's packets go into the library's queue, already encoded (one
  encoding per event for all of them); the library answers its GETs.

The connection object the hub holds (:class:`SioConnection`) forwards nothing: its
``deliver``/``send``/``hold``/``release`` *are* the writer's bound methods once on
websocket (instance attributes rebound at the upgrade), so the hot path costs the same
one call per client as ``/api/ws``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

import engineio
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_socket import AsyncSocket
from tornado.websocket import WebSocketClosedError, WebSocketHandler

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
from fxgate.hub.sink import Dialect
from fxgate.node import Node
from fxgate.plugins.channel import Principal
from fxgate.protocol import socketio as sio
from fxgate.protocol.socketio_lists import ListFeeds
from fxgate.protocol.socketio_session import SocketIOSession
from fxgate.web.ws.canonical import ANONYMOUS
from fxgate.web.ws.framing import framed, text_frame
from fxgate.web.ws.writer import Flusher, FrameWriter

log = logging.getLogger(__name__)

_SIO_FRAMED = framed(sio.SOCKETIO)

#: A polling client's bound, in packets per byte of ``ws.queue_max_bytes`` (the
#: websocket transport's bound is in bytes, in the writer): 4,096 queued packets at the
#: default 1 MiB, then it is disconnected as a slow consumer.
POLL_BYTES_PER_PACKET = 256

#: Refused CONNECTs (bad tokens) one Engine.IO connection may send before it is closed.
MAX_REFUSALS = 5


class _Deliver(Protocol):
    def __call__(self, frame: bytes, conflate_key: object | None = None) -> None: ...


class _Send(Protocol):
    def __call__(self, payload: bytes) -> None: ...


class _Raw:
    """An Engine.IO packet already encoded (``42[...]``): the library's polling
    response joins ``encode()`` of each queued packet."""

    __slots__ = ("data",)
    packet_type = 4
    binary = False

    def __init__(self, data: bytes) -> None:
        self.data = data

    def encode(self, b64: bool = False) -> str:
        return self.data.decode()


class _WatchedSocket(AsyncSocket):  # type: ignore[misc]
    """The library's socket, told to report the moment it is on websocket: the
    library sets ``upgraded = True`` after the upgrade's ``5`` (or at once for a
    websocket-only client), right before its own writer starts."""

    @property
    def upgraded(self) -> bool:
        return bool(self.__dict__.get("_fx_upgraded", False))

    @upgraded.setter
    def upgraded(self, value: bool) -> None:
        self.__dict__["_fx_upgraded"] = value
        client = self.__dict__.get("fx_client")
        if value and client is not None:
            client.on_websocket()


class SioConnection:
    """The connection as the hub and the session see it (a ``Connection``)."""

    deliver: _Deliver
    send: _Send
    hold: Callable[[], None]
    release: Callable[[], None]

    def __init__(self, client: Client) -> None:
        self.client = client
        self.principal: Principal = ANONYMOUS
        self.dialect: Dialect = sio.SOCKETIO
        self.writer: FrameWriter | None = None
        self._held: list[bytes] | None = None
        self._max_packets = max(
            64, client.node.settings.ws.queue_max_bytes // POLL_BYTES_PER_PACKET
        )
        self._overflowed = False
        self.deliver = self._poll_deliver
        self.send = self._poll_send
        self.hold = self._poll_hold
        self.release = self._poll_release

    # -- polling ---------------------------------------------------------------

    def _poll_deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        if self._held is not None:
            self._held.append(frame)
        else:
            self._poll_send(frame)

    def _poll_send(self, payload: bytes) -> None:
        queue = self.client.eio_socket.queue
        if queue.qsize() >= self._max_packets:
            if not self._overflowed:
                self._overflowed = True
                log.warning("slow consumer disconnected", extra={"queued": queue.qsize()})
                self.kick(Disconnects.SLOW_CONSUMER)
            return
        queue.put_nowait(_Raw(payload))

    def _poll_hold(self) -> None:
        if self._held is None:
            self._held = []

    def _poll_release(self) -> None:
        held, self._held = self._held, None
        for frame in held or ():
            self._poll_send(frame)

    # -- websocket -------------------------------------------------------------

    def use_writer(self, writer: FrameWriter) -> None:
        """From now on the writer is the connection: what the library still queued
        (the handshake, a ping, held events) goes first, in order."""
        self.writer = writer
        queue = self.client.eio_socket.queue
        while not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is None:  # the library's "closed" mark: keep it for its writer
                queue.put_nowait(None)
                break
            writer.control(text_frame(pkt.encode().encode()))
        held, self._held = self._held, None
        if held:
            writer.hold()
            for frame in held:
                writer.deliver(text_frame(frame))
        self.dialect = writer.dialect
        self.deliver = writer.deliver
        self.send = writer.send
        self.hold = writer.hold
        self.release = writer.release

    def kick(self, disconnect: Disconnect) -> None:
        self.client.kick(disconnect)


class Client:
    """One Engine.IO connection and, once its CONNECT is accepted, its session."""

    def __init__(self, endpoint: SocketIOEndpoint, sid: str, environ: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.sid = sid
        self.eio_socket: Any = endpoint.eio.sockets[sid]
        handler = environ.get("tornado.handler")
        self.handler: SocketIOHandler | None = (
            handler if isinstance(handler, SocketIOHandler) and handler.ws_connection else None
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


#: Engine.IO packet types a client may send (1 close ... 6 noop); 0 (open) is the
#: server's, and ``b`` (base64 binary) is refused like every binary payload.
_CLIENT_TYPES = frozenset("123456")


def valid_packet(text: str) -> bool:
    """Whether the library can decode ``text`` as a client's Engine.IO packet (it
    raises, with a traceback in the log, on an empty packet or an unknown type)."""
    return bool(text) and text[0] in _CLIENT_TYPES


def valid_payload(body: bytes) -> bool:
    """A polling POST body: packets separated by ``\\x1e``, each valid, at most the
    library's ``max_decode_packets`` of them."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return False
    packets = text.split("\x1e")
    return len(packets) <= eio_payload.Payload.max_decode_packets and all(
        valid_packet(p) for p in packets
    )


class _LibraryLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """python-engineio's log, in fxgate's (JSON) log: warnings and up only (it logs
    every packet at INFO), and what it calls an error is a client's mistake (an unknown
    session, a bad origin), so a warning here; its tracebacks stay errors."""

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.warning(msg, *args, **kwargs)


def _library_log() -> _LibraryLog:
    logger = logging.getLogger("fxgate.web.engineio")
    logger.setLevel(logging.WARNING)
    return _LibraryLog(logger, {})


def cors_origins(origins: list[str]) -> Any:
    """``server.cors_origins`` in the library's terms: empty means same origin only
    (as for REST), ``*`` any origin."""
    if "*" in origins:
        return "*"
    return list(origins) if origins else None


class SocketIOEndpoint:
    """One per application: the Engine.IO server and every client's state."""

    def __init__(self, node: Node, flusher: Flusher) -> None:
        self.node = node
        self.flusher = flusher
        s = node.settings
        self.eio = engineio.AsyncServer(
            async_mode="tornado",
            # The library's handshake states the interval in whole seconds.
            ping_interval=max(1, math.ceil(s.ws.ping_interval)),
            ping_timeout=s.ws.ping_timeout,
            max_http_buffer_size=s.ws.max_frame_size,
            cors_allowed_origins=cors_origins(s.server.cors_origins),
            async_handlers=False,
            logger=_library_log(),
            transports=["polling", "websocket"],
        )
        # A polling POST may carry as many packets as a second's worth of client
        # messages (the library's default, 16, would refuse a busy dashboard's batch).
        eio_payload.Payload.max_decode_packets = max(16, s.ws.max_messages_per_second)
        self.eio.on("connect", self._on_connect)
        self.eio.on("message", self._on_message)
        self.eio.on("disconnect", self._on_disconnect)
        self.clients: dict[str, Client] = {}
        #: Upgrade requests' handlers by sid, until the library says upgraded.
        self.upgrading: dict[str, SocketIOHandler] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.lists = ListFeeds(
            node.hub,
            node.api.trading,
            _LoopTimers(),
            interval=s.socketio.list_interval,
            spawn=self.spawn,
        )

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("socket.io task failed", exc_info=task.exception())

    async def _on_connect(self, sid: str, environ: dict[str, Any]) -> bool:
        if self.node.stopping:
            return False
        sock = self.eio.sockets[sid]
        sock.__class__ = _WatchedSocket
        client = Client(self, sid, environ)
        sock.fx_client = client
        self.clients[sid] = client
        return True

    async def _on_message(self, sid: str, data: str | bytes) -> None:
        client = self.clients.get(sid)
        if client is not None:
            await client.on_message(data)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        client = self.clients.get(sid)
        if client is not None:
            client.on_disconnect()


class _LoopTimers:
    """The running loop's clock and timers, looked up when used (the endpoint is built
    before the loop serves)."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Any:
        return asyncio.get_running_loop().call_later(delay, callback, *args)


class SocketIOHandler(WebSocketHandler):
    """python-engineio's Tornado handler, with fxgate's limits and origin rule: plain
    HTTP requests are the polling transport, an upgrade is the websocket one."""

    def initialize(self, endpoint: SocketIOEndpoint) -> None:
        self.endpoint = endpoint
        self.client: Client | None = None
        self.receive_queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._task: asyncio.Task[Any] | None = None

    @property
    def max_message_size(self) -> int:
        return self.endpoint.node.settings.ws.max_frame_size

    def get_compression_options(self) -> dict[str, Any] | None:
        return None  # shared frames are uncompressed

    def check_origin(self, origin: str) -> bool:
        # The library checks the origin against server.cors_origins itself.
        return True

    def _refuse_stopping(self) -> bool:
        """A new connection while shutting down is refused; a live polling client's
        requests go on, so that it reads its ``disconnected``."""
        if self.endpoint.node.stopping and not self.get_query_argument("sid", None):
            self.set_status(503)
            self.finish("Server restarting")
            return True
        return False

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self._refuse_stopping():
            return
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            await super().get(*args, **kwargs)
        else:
            await self.endpoint.eio.handle_request(self)

    async def post(self, *args: Any, **kwargs: Any) -> None:
        if self._refuse_stopping():
            return
        if not valid_payload(self.request.body):
            # The library would refuse it too, with a traceback in the log.
            self.set_status(400)
            self.finish("Invalid Engine.IO payload")
            return
        await self.endpoint.eio.handle_request(self)

    async def options(self, *args: Any, **kwargs: Any) -> None:
        await self.endpoint.eio.handle_request(self)

    def open(self, *args: str, **kwargs: str) -> None:
        sid = self.get_query_argument("sid", None)
        if sid:
            self.endpoint.upgrading[sid] = self
        self._task = asyncio.ensure_future(self.endpoint.eio.handle_request(self))

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, str) and not valid_packet(message):
            return  # Engine.IO has no error packet; a broken one is dropped
        self.receive_queue.put_nowait(message)

    async def get_next_message(self) -> str | bytes | None:
        return await self.receive_queue.get()

    def on_close(self) -> None:
        self.receive_queue.put_nowait(None)
        if self.client is not None and self.client.conn.writer is not None:
            self.client.conn.writer.close()


__all__ = ["SocketIOEndpoint", "SocketIOHandler"]
