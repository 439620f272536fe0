"""A TCP proxy that can fail like a dead network: ``blackhole()`` stops forwarding in
both directions and closes nothing, as when Wi-Fi drops or a laptop lid closes (no FIN,
no RST reaches the daemon; what it writes goes nowhere).

It also reads the WebSocket frames going through (RFC 6455 framing, either direction),
so a test can wait for a ping the daemon wrote after some message and for the pong that
answers it (:meth:`Proxy.ponged_after`): then the daemon knows the client read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct


class _Frames:
    """Splits one direction's bytes into WebSocket frames: (opcode, unmasked payload).
    The first chunk (the HTTP upgrade) is skipped up to its blank line."""

    def __init__(self) -> None:
        self.buf = b""
        self.upgraded = False

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return []
            self.buf = self.buf[end + 4 :]
            self.upgraded = True
        out = []
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, at = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
            mask = b""
            if b1 & 0x80:
                mask, at = self.buf[at : at + 4], at + 4
            if len(self.buf) < at + n:
                break
            payload = self.buf[at : at + n]
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            out.append((b0 & 0x0F, payload))
            self.buf = self.buf[at + n :]
        return out


class Proxy:
    """One listening port forwarding every connection to ``127.0.0.1:target``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.flowing = True
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: Every frame forwarded, in order: (direction "down" to the client or "up",
        #: opcode, payload). Engine.IO's ping and pong are text frames "2" and "3".
        self.frames: list[tuple[str, int, bytes]] = []
        self._changed = asyncio.Event()

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def blackhole(self) -> None:
        """From now on nothing goes through, and nothing is closed."""
        self.flowing = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers += [writer, up_w]
        with contextlib.suppress(asyncio.CancelledError):  # close() ends it
            await asyncio.gather(
                self._pipe(reader, up_w, "up"),
                self._pipe(up_r, writer, "down"),
                return_exceptions=True,
            )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        frames = _Frames()
        while True:
            data = await reader.read(65536)
            if not self.flowing:
                # Gone into the void; an end of stream is not passed on either (the
                # other side must find out by itself, by its ping timeout).
                if not data:
                    return
                continue
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            for opcode, payload in frames.feed(data):
                self.frames.append((direction, opcode, payload))
            self._changed.set()
            writer.write(data)
            with contextlib.suppress(OSError):
                await writer.drain()

    def mark(self) -> int:
        """A point in the forwarded frames (for :meth:`ponged_after`)."""
        return len(self.frames)

    async def ponged_after(
        self, mark: int, ping: tuple[int, bytes | None], pong: tuple[int, bytes | None]
    ) -> None:
        """Wait until a ping forwarded to the client after ``mark`` has had its pong
        forwarded to the daemon. ``ping``/``pong``: (opcode, payload or None for any);
        a WebSocket pong must echo its ping's payload."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            pinged: list[bytes] = []
            for direction, opcode, payload in self.frames[mark:]:
                if direction == "down" and opcode == ping[0] and ping[1] in (None, payload):
                    pinged.append(payload)
                elif pinged and direction == "up" and opcode == pong[0]:
                    if pong[1] is None and payload in pinged:
                        return
                    if pong[1] is not None and payload == pong[1]:
                        return
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError("no ping answered after the mark")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
