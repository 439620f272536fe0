"""The node's background tasks: started anywhere, all cancelled at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from fxgate.services.ports.store.errors import StoreFencedError

log = logging.getLogger("fxgate.node")


class Tasks:
    """A set of tasks that outlive the code that starts them (feeds, flushers, plugin
    producers), so shutdown can cancel them, and a crash is logged instead of waiting
    for a garbage collector to mention it. A task ended by a fenced trading write (a
    cluster node that lost the leader lease) did not crash: that is a WARNING with the
    reason, without a traceback."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, StoreFencedError):
            log.warning(
                "background task stopped: this node lost the leader lease",
                extra={"task": task.get_name(), "reason": str(exc)},
            )
        elif exc is not None:
            log.error(
                "background task failed",
                exc_info=exc,
                extra={"task": task.get_name()},
            )

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
