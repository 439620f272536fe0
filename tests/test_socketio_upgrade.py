"""The moment a Socket.IO client moves to the websocket: what the polling side still
held (the library's queue, frames held during a snapshot) goes to the frame writer
first and in order, and from then on the hub's frames go straight to the writer."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from engineio import packet as eio_packet
from tornado.iostream import IOStream

from fxgate.config.settings import Settings
from fxgate.domain.errors import Disconnect
from fxgate.domain.roles import Role
from fxgate.plugins.channel import Principal
from fxgate.protocol.socketio import SOCKETIO
from fxgate.web.ws.framing import framed, text_frame
from fxgate.web.ws.socketio_conn import SioConnection
from fxgate.web.ws.writer import Flusher, FrameWriter
from tests.conftest import until
from tests.test_writer import drain


class FakeSocket:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()


class Owner:
    def __init__(self) -> None:
        self.eio_socket = FakeSocket()
        self.settings = Settings()
        self.kicks: list[Disconnect] = []

    def kick(self, disconnect: Disconnect) -> None:
        self.kicks.append(disconnect)


async def test_the_upgrade_keeps_the_order_and_then_bypasses_the_library() -> None:
    owner = Owner()
    conn = SioConnection(owner)
    # Polling: the library's queue gets the packets, encoded once.
    owner.eio_socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
    conn.send(b'42["connected",{}]')
    conn.hold()  # a subscribe's snapshot in progress
    conn.deliver(b'42["quotes",{"n":1}]')
    conn.send(b'42["subscribed",{}]')
    assert owner.eio_socket.queue.qsize() == 3

    ours, theirs = socket.socketpair()
    writer = FrameWriter(
        IOStream(ours),
        Flusher(),
        max_bytes=1 << 20,
        kick=owner.kick,
        principal=Principal("u", Role.TRADER),
        dialect=framed(SOCKETIO),
    )
    conn.use_writer(writer)
    assert owner.eio_socket.queue.empty()
    assert conn.deliver == writer.deliver  # the hot path is the writer's own method
    conn.send(b'42["account_update",{}]')  # a reply: ahead of what is held
    conn.release()  # the snapshot is done: the held quote follows
    conn.deliver(text_frame(b'42["quotes",{"n":2}]'))  # the hub's frames: framed now
    assert conn.dialect is framed(SOCKETIO)
    expected = b"".join(
        text_frame(p)
        for p in (
            b"2",
            b'42["connected",{}]',
            b'42["subscribed",{}]',
            b'42["account_update",{}]',
            b'42["quotes",{"n":1}]',
            b'42["quotes",{"n":2}]',
        )
    )
    got = bytearray()
    await until(lambda: len(drain(theirs, got)) >= len(expected))
    assert bytes(got) == expected
    assert owner.kicks == []
