"""``fxgate serve`` stops on SIGTERM/SIGINT on every platform: where the event loop has
no ``add_signal_handler`` (Windows, next to an MT5 terminal), plain handlers take over."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from fxgate.ops.serve import on_signals


class NoSignalsLoop:
    """A loop like Windows' Proactor: signal handlers are not implemented."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def add_signal_handler(self, *_args: Any) -> None:
        raise NotImplementedError

    def call_soon_threadsafe(self, fn: Any, *args: Any) -> Any:
        return self._loop.call_soon_threadsafe(fn, *args)


async def test_a_loop_without_signal_handlers_still_stops_on_sigterm() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop = asyncio.Event()
    try:
        on_signals(NoSignalsLoop(asyncio.get_running_loop()), stop.set)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


async def test_the_loops_own_handlers_are_used_where_they_exist() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    try:
        on_signals(loop, stop.set)
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(stop.wait(), 5)
    finally:
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(s)
