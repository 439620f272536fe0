"""The facts the frame writer reads from Tornado's private IOStream state.

``fxgate/web/ws/iostream.py`` is the only module that reaches into ``IOStream``; if a
Tornado upgrade changes what it reads, this test fails and the hot path is untouched.
"""

from __future__ import annotations

import asyncio
import socket

from tornado.iostream import IOStream

from fxgate.web.ws.iostream import buffered_bytes, pending_writes, raw_socket


async def test_pending_writes_and_buffered_bytes_follow_a_stream_write() -> None:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    stream = IOStream(ours)
    assert raw_socket(stream) is ours
    queue = pending_writes(stream)
    assert not queue
    assert buffered_bytes(stream) == 0

    data = b"x" * (2 << 20)
    done = stream.write(data)
    assert queue  # a write is pending...
    assert 0 < buffered_bytes(stream) <= len(data)  # ...and the stream holds its rest

    theirs.setblocking(False)
    while not done.done():
        try:
            theirs.recv(1 << 16)
        except BlockingIOError:
            await asyncio.sleep(0.001)
    await done
    assert buffered_bytes(stream) == 0
    assert not queue
    # The writer fetches the queue once per connection: it must stay the same object.
    assert pending_writes(stream) is queue
    stream.close()
    theirs.close()
