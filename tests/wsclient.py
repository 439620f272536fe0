"""A small asyncio client for the canonical protocol, on the ``websockets`` library.

It has no "read for N seconds" call on purpose: a test waits for something it can
name. A message (:meth:`Client.type`, :meth:`Client.wait_for`), a set of messages
(:meth:`Client.read_until`), or a ping's answer (:meth:`Client.barrier`), after which
everything the daemon sent before has arrived, so "nothing else came" is
``await c.barrier() == []``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, url: str, **kw: Any) -> Client:
        ws = await websockets.connect(url, max_size=None, open_timeout=10, **kw)
        return cls(ws)

    async def send(self, msg: Any) -> None:
        await self.ws.send(msg if isinstance(msg, str | bytes) else json.dumps(msg))

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        msg: dict[str, Any] = json.loads(raw)
        return msg

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5
    ) -> dict[str, Any]:
        """The first message matching ``pred``, skipping the others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("no matching message")
            msg = await self.recv(left)
            if pred(msg):
                return msg

    async def type(self, kind: str, timeout: float = 5) -> dict[str, Any]:
        return await self.wait_for(lambda m: m.get("type") == kind, timeout)

    async def read_until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 5
    ) -> list[dict[str, Any]]:
        """Every message read until ``done(all read so far)`` holds; fails with what came
        if it does not within ``timeout`` seconds."""
        got: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(got):
            left = deadline - loop.time()
            if left <= 0:
                seen = [(m.get("type"), m.get("data")) for m in got]
                raise AssertionError(f"timed out after {timeout}s; got {seen}")
            with contextlib.suppress(TimeoutError):
                got.append(await self.recv(left))
        return got

    async def barrier(self, timeout: float = 5) -> list[dict[str, Any]]:
        """Send a ping; every message that came before its pong.

        The daemon handles a connection's messages one after the other and queues a
        reply behind every frame queued for the connection before it, so when the pong
        is back, everything sent before the daemon read the ping has arrived: every
        event of a REST call that has returned (events fan out before the response),
        every snapshot of a subscription acknowledged before. Do not use it while a
        burst has the connection rate-limited: the ping would be dropped."""
        await self.send({"type": "ping"})
        got: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (msg := await self.recv(max(deadline - loop.time(), 0.001)))["type"] != "pong":
            got.append(msg)
        return got

    async def subscribe(self, *channels: Any) -> dict[str, Any]:
        await self.send({"type": "subscribe", "channels": list(channels)})
        return await self.type("subscription")

    async def closed_with(self, timeout: float = 5) -> int | None:
        """Read until the server closes; the close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    async def close(self) -> None:
        await self.ws.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
