"""A Socket.IO test client: python-socketio's ``AsyncClient``, recording every event.

``SioClient.wait(event, pred)`` returns the next event of that name (after the last
one a wait returned) that ``pred`` accepts, waiting for it; ``seen(event)`` lists what
arrived so far. ``connect_error`` and ``disconnect`` are recorded as events too, so a
test waits on a refusal or a server disconnect the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import socketio


class SioClient:
    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[str, Any]] = []
        self._cursor: dict[str, int] = {}
        self._changed = asyncio.Event()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._any)
        self.sio.on("connect", lambda: self._record("connect", None))
        self.sio.on("connect_error", lambda data: self._record("connect_error", data))
        self.sio.on("disconnect", lambda reason=None: self._record("disconnect", reason))

    async def _any(self, event: str, data: Any = None) -> None:
        self._record(event, data)

    def _record(self, event: str, data: Any) -> None:
        self.events.append((event, data))
        self._changed.set()

    async def connect(
        self,
        token: str | None,
        transports: list[str] | None = None,
        *,
        query_token: bool = False,
        wait: bool = True,
    ) -> SioClient:
        url = self.url + (f"?token={token}" if query_token and token else "")
        auth = {"token": token} if token and not query_token else None
        try:
            await self.sio.connect(
                url,
                auth=auth,
                transports=transports or ["polling", "websocket"],
                socketio_path="/socket.io/",
                wait_timeout=5,
            )
        except socketio.exceptions.ConnectionError:
            if wait:
                raise
        return self

    def seen(self, event: str) -> list[Any]:
        return [d for e, d in self.events if e == event]

    async def wait(
        self,
        event: str,
        pred: Callable[[Any], bool] | None = None,
        timeout: float = 5,
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            start = self._cursor.get(event, 0)
            for i in range(start, len(self.events)):
                e, data = self.events[i]
                if e == event and (pred is None or pred(data)):
                    self._cursor[event] = i + 1
                    return data
            left = deadline - loop.time()
            if left <= 0:
                got = sorted({e for e, _ in self.events})
                raise AssertionError(f"no {event!r} within {timeout}s; got {got}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data)

    async def heartbeat(self, stamp: int) -> None:
        """A round trip: everything the server sent before its answer has arrived."""
        await self.emit("heartbeat", {"timestamp": stamp})
        await self.wait("heartbeat_ack", lambda d: d["timestamp"] == stamp)

    @property
    def transport(self) -> str:
        return str(self.sio.transport())

    async def close(self) -> None:
        await self.sio.disconnect()
