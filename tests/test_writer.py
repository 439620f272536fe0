"""The frame writer against a real socket whose peer does not read."""

from __future__ import annotations

import asyncio
import socket

from tornado.iostream import IOStream

from fxgate.domain.roles import Role
from fxgate.plugins.channel import Principal
from fxgate.protocol.canonical import CANONICAL
from fxgate.web.ws.framing import text_frame
from fxgate.web.ws.writer import CHUNK, CHUNK_EXPECTING, Flusher, FrameWriter
from tests.conftest import until


def make_writer(max_bytes: int) -> tuple[FrameWriter, socket.socket, list[int]]:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    kicked: list[int] = []
    writer = FrameWriter(
        IOStream(ours),
        Flusher(),
        max_bytes=max_bytes,
        kick=lambda d: kicked.append(d.code),
        principal=Principal("u", Role.TRADER),
        dialect=CANONICAL,
    )
    return writer, theirs, kicked


def read_all(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def drain(sock: socket.socket, into: bytearray) -> bytearray:
    """``into``, with what the peer can read now appended (for :func:`until`)."""
    into += read_all(sock)
    return into


async def test_frames_arrive_in_order_in_one_write_per_iteration() -> None:
    writer, peer, _ = make_writer(1 << 20)
    frames = [text_frame(f"m{i}".encode()) for i in range(100)]
    for f in frames:
        writer.deliver(f)
    got = bytearray()
    await until(lambda: len(drain(peer, got)) >= len(b"".join(frames)))
    assert got == b"".join(frames)


async def test_market_data_is_conflated_while_the_client_is_slow() -> None:
    # Room for the 1.2 MB that fills the buffers: they count against the bound too.
    writer, peer, kicked = make_writer(4 << 20)
    big = text_frame(b"x" * 60_000)
    for _ in range(20):  # fill the socket buffers until the writer falls back
        writer.deliver(big)
    await asyncio.sleep(0)  # one loop turn: the flush runs and finds the socket full
    for i in range(1000):
        writer.deliver(text_frame(f"EURUSD {i}".encode()), ("market-data", "EURUSD"))
        writer.deliver(text_frame(f"GBPUSD {i}".encode()), ("market-data", "GBPUSD"))
    assert writer.backlog_bytes < 100  # two frames, not two thousand
    data = bytearray()
    await until(lambda: b"GBPUSD 999" in drain(peer, data))
    assert b"EURUSD 999" in data
    assert b"GBPUSD 999" in data
    assert b"EURUSD 500" not in data
    assert kicked == []


async def test_a_trading_backlog_over_the_bound_is_a_4008() -> None:
    writer, _peer, kicked = make_writer(64 * 1024)
    frame = text_frame(b"t" * 1000)
    for _ in range(2000):  # 2 MB of trading events to a client that reads nothing
        writer.deliver(frame)
        if kicked:
            break
        await asyncio.sleep(0)
    assert kicked == [4008]


class CountingWriter:
    """Stands in for a FrameWriter in the flusher's dirty list: counts its flushes."""

    def __init__(self, flushed: list[int], n: int) -> None:
        self._flushed, self._n = flushed, n

    def flush(self) -> None:
        self._flushed.append(self._n)


async def test_a_pass_yields_after_fewer_sockets_while_the_bus_expects_input() -> None:
    """While the node's own events are on their way back from Redis, a chunk is
    CHUNK_EXPECTING writers, not CHUNK: the subscription is read sooner. Every writer is
    still flushed once per pass, in order."""
    expecting = [False]
    flusher = Flusher(lambda: expecting[0])
    flushed: list[int] = []
    flusher.dirty = [CountingWriter(flushed, i) for i in range(200)]  # type: ignore[misc]
    flusher.schedule()
    flusher.flush()
    assert len(flushed) == CHUNK
    expecting[0] = True
    flusher.flush()
    assert len(flushed) == CHUNK + CHUNK_EXPECTING
    expecting[0] = False
    await until(lambda: not flusher.scheduled)
    assert flushed == list(range(200))
