"""User-space cost of the frame writer per message, in process, over real TCP loopback.

One process holds N server sockets wrapped in Tornado ``IOStream``s and ``FrameWriter``s
(``fxgate/web/ws/writer.py``), a forked child drains the N client ends, and each round
delivers one shared frame to every writer and flushes them, as the hub does per tick.
It prints CPU per message, which is noisy on a shared machine; for a figure that is not,
count instructions with Valgrind (user space only: the kernel's TCP work, ~70 % of the
daemon's CPU per message, is not in it) and take the difference of two round counts::

    valgrind --tool=cachegrind --cache-sim=no python bench/writer_cost.py 1000 20
    valgrind --tool=cachegrind --cache-sim=no python bench/writer_cost.py 1000 60
    # (I refs of the second - I refs of the first) / (40 * 1000) = instructions/message
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import sys
import time

from tornado.iostream import IOStream

from fxgate.domain.roles import Role
from fxgate.plugins.channel import Principal
from fxgate.protocol import canonical
from fxgate.web.ws.writer import Flusher, FrameWriter


def drain(port: int, n: int, ready: int) -> None:
    """The client ends: read everything, as fast as it comes (the child process)."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    ep = select.epoll()
    for s in socks:
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
    by_fd = {s.fileno(): s for s in socks}
    os.write(ready, b"x")
    while True:
        for fd, _ in ep.poll():
            try:
                if not by_fd[fd].recv(65536):
                    os._exit(0)
            except BlockingIOError:
                pass
            except OSError:
                os._exit(0)


async def main(n: int, rounds: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        listener.close()
        drain(port, n, ready_w)
    conns = [listener.accept()[0] for _ in range(n)]
    os.read(ready_r, 1)
    flusher = Flusher()
    writers = []
    for c in conns:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writers.append(
            FrameWriter(
                IOStream(c),
                flusher,
                max_bytes=1 << 22,
                kick=lambda d: None,
                principal=Principal("", Role.VIEWER),
                dialect=canonical.CANONICAL,
            )
        )
    frame = b"\x81\x7e\x00\xc8" + b"x" * 200  # a 200-byte text frame, like one tick

    async def one_round() -> None:
        for w in writers:
            w.deliver(frame, None)
        while flusher.scheduled:  # the flusher's passes, chunk by chunk
            await asyncio.sleep(0)

    for _ in range(20):
        await one_round()
    cpu0 = time.process_time()
    for _ in range(rounds):
        await one_round()
        await asyncio.sleep(0.002)
    cpu = time.process_time() - cpu0
    print(f"N={n} rounds={rounds}: {cpu / (n * rounds) * 1e6:.2f} µs CPU per message")
    os.kill(pid, 9)


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
            int(sys.argv[2]) if len(sys.argv) > 2 else 300,
        )
    )
