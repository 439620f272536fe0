"""The terminal's owner as a thread of this process (``mt5.worker = "thread"``).

Every job runs in the one thread of a single-thread executor, off the event loop but
under its GIL: the package's Python (and the fake's, and mt5linux's RPyC) then delays
the loop by up to the interpreter's switch interval each time the loop wants the GIL
back (bench/README.md, "MT5"). The default is the child process of :mod:`.process`;
this stays for tests that drive the fake terminal in their own process, and for an
operator who wants one process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fxgate.brokers.mt5.jobs import Owner


class ThreadTerminal:
    """A :class:`~.terminal.Worker`; ``api_factory`` builds the package, in the thread."""

    def __init__(self, api_factory: Callable[[], Any]) -> None:
        self._owner = Owner(api_factory)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mt5")

    async def run(self, job: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._owner.run, job, args)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await self.run("call", name, args, kwargs)

    def forget(self) -> None:
        self._executor.submit(self._owner.forget)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
