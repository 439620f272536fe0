"""The connection the hub holds for one Socket.IO client, on either transport.

On polling, frames go into python-engineio's queue for the client (already encoded:
one encoding per event for every polling client) and the library answers its GETs. On
websocket, the connection *is* the frame writer: :meth:`SioConnection.use_writer`
rebinds ``deliver``/``send``/``hold``/``release`` (instance attributes) to the
writer's bound methods, so the hub's hot path costs one call per client, as on
``/api/ws``, and moves what the library still queued into the writer first, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from fxgate.config.settings import Settings
from fxgate.domain.errors import Disconnect, Disconnects
from fxgate.hub.sink import Dialect
from fxgate.plugins.channel import Principal
from fxgate.protocol import socketio as sio
from fxgate.web.ws.canonical import ANONYMOUS
from fxgate.web.ws.framing import text_frame
from fxgate.web.ws.writer import FrameWriter

log = logging.getLogger(__name__)

#: A polling client's bound, in packets per byte of ``ws.queue_max_bytes`` (the
#: websocket transport's bound is in bytes, in the writer): 4,096 queued packets at the
#: default 1 MiB, then it is disconnected as a slow consumer.
POLL_BYTES_PER_PACKET = 256


class Owner(Protocol):
    """What the connection needs of its client: the library's socket (its queue),
    the settings, and how to end the connection."""

    eio_socket: Any

    @property
    def settings(self) -> Settings: ...

    def kick(self, disconnect: Disconnect) -> None: ...


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


class SioConnection:
    """The connection as the hub and the session see it (a ``Connection``).

    Slotted, like :class:`FrameWriter`: the hub's loop reads ``dialect`` and calls
    ``deliver`` on every subscriber for every tick, and slot loads keep that as cheap
    as for the other dialects' writers.
    """

    __slots__ = (
        "_held",
        "_max_packets",
        "_overflowed",
        "client",
        "deliver",
        "dialect",
        "hold",
        "principal",
        "release",
        "send",
        "writer",
    )

    deliver: _Deliver
    send: _Send
    hold: Callable[[], None]
    release: Callable[[], None]

    def __init__(self, client: Owner) -> None:
        self.client = client
        self.principal: Principal = ANONYMOUS
        self.dialect: Dialect = sio.SOCKETIO
        self.writer: FrameWriter | None = None
        self._held: list[bytes] | None = None
        self._max_packets = max(64, client.settings.ws.queue_max_bytes // POLL_BYTES_PER_PACKET)
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

    def ahead_of_ping(self) -> bool:
        """A ping is being queued or written: whether every frame delivered so far goes
        ahead of it (the writer's queue handed to the socket; on polling, the library's
        queue is in order, so only frames held back during a snapshot are behind it)."""
        if self.writer is not None:
            return self.writer.flush_for_ping()
        return self._held is None

    def kick(self, disconnect: Disconnect) -> None:
        self.client.kick(disconnect)
