"""Jobs run concurrently, a bounded number at once, and in order per key.

The leader's trading commands: a slow broker call for one user must not hold every
other user's orders, yet one user's commands must run in the order they were sent (a
cancel after the order it cancels). Each key (the user) has a lane, a queue that one
task drains; a lane takes one of ``limit`` slots only while its job runs, so lanes
waiting for their turn take none. :meth:`submit` waits while ``cap`` jobs are queued or
running: the reader of the command stream slows down instead of the queue growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Lanes:
    def __init__(self, limit: int, cap: int | None = None) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._cap = cap if cap is not None else max(16, limit * 16)
        self._lanes: dict[str, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        #: Jobs submitted and not finished (queued in a lane, or running).
        self.pending = 0

    async def submit(self, key: str, job: Job) -> None:
        """Queue ``job`` behind ``key``'s earlier jobs; returns once it is queued."""
        while self.pending >= self._cap:
            self._room.clear()
            await self._room.wait()
        self.pending += 1
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(job)
            return
        self._lanes[key] = deque([job])
        task = asyncio.get_running_loop().create_task(self._drain(key), name="command-lane")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: str) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                async with self._slots:
                    try:
                        await lane[0]()
                    except Exception:
                        log.exception("a trading command lane failed")
                lane.popleft()
                self.pending -= 1
                self._room.set()
        finally:
            # No await between the last check and here: nothing joins a lane that ends.
            if self._lanes.get(key) is lane:
                del self._lanes[key]

    async def close(self) -> None:
        """Stop every lane (their jobs are cancelled where they stand)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        self.pending = 0
