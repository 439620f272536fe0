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

The connection object the hub holds (``socketio_conn.SioConnection``) forwards nothing:
its ``deliver``/``send``/``hold``/``release`` *are* the writer's bound methods once on
websocket (instance attributes rebound at the upgrade), so the hot path costs the same
one call per client as ``/api/ws``. Each client's namespace layer (CONNECT, kicks) is
``socketio_client.Client``; this module is the Engine.IO side: the server, the
handler, and the guards in front of the library.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

import engineio
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_socket import AsyncSocket
from tornado.websocket import WebSocketHandler

from fxgate.node import Node
from fxgate.protocol.socketio_lists import ListFeeds
from fxgate.web.ws.socketio_client import Client
from fxgate.web.ws.writer import Flusher

log = logging.getLogger(__name__)


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

    # The library's pings and pongs, on either transport: a pong proves the client read
    # everything written before the ping it answers (``fxgate.hub.acks``).

    async def send(self, pkt: Any) -> None:
        if pkt.packet_type == eio_packet.PING:
            client = self.__dict__.get("fx_client")
            if client is not None:
                client.on_ping()
        await super().send(pkt)

    async def receive(self, pkt: Any) -> None:
        if pkt.packet_type == eio_packet.PONG:
            client = self.__dict__.get("fx_client")
            if client is not None:
                client.on_pong()
        await super().receive(pkt)


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
    HTTP requests are the polling transport, an upgrade is the websocket one.

    Adapted from ``engineio/async_drivers/tornado.py`` (python-engineio, MIT licence,
    Miguel Grinberg), whose handler offers no hook for the frame size, the origin rule
    or compression."""

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
