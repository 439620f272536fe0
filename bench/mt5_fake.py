"""The fake terminal as ``bench/mt5.py`` sets it up, metered: in the benchmark's own
process (``--worker thread``) or in the adapter's worker process (``--worker process``,
the default), where :func:`api` is what the child calls to get its "package".

The meter adds up the CPU the fake's functions spend (the real terminal spends it in its
own process, so it is not the adapter's), and the record of produced ticks is what
"none missing, none repeated" is judged against. In the child both are read back over
the worker's own pipe, as two more functions of the package: ``bench_begin()`` starts
the window, ``bench_end()`` answers the numbers.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class FakeMeter:
    """Wraps the fake package's functions (the adapter calls them by name on the module,
    as it would the real one) to add up the thread CPU they take and note the longest
    call, and optionally to wait ``latency`` seconds first, standing for the named pipe's
    round trip: with the GIL released (``time.sleep``, as a well-behaved blocking read) or,
    with ``hold_gil``, held (libc ``usleep`` called through ``ctypes.PyDLL``), as the real
    package may do (its binary imports no GIL-releasing function; unverified)."""

    def __init__(self, module: Any, latency: float, *, hold_gil: bool = False) -> None:
        self.cpu = 0.0
        self.longest = (0.0, "")
        self.calls: Counter[str] = Counter()
        self.wall: Counter[str] = Counter()
        self.lock = threading.Lock()
        wait: Callable[[], object] | None = None
        if latency and hold_gil:
            usleep, micros = ctypes.PyDLL(None).usleep, int(latency * 1e6)
            wait = lambda: usleep(micros)  # noqa: E731
        elif latency:
            wait = lambda: time.sleep(latency)  # noqa: E731
        for name in module.__all__:
            fn = getattr(module, name)
            if callable(fn) and not isinstance(fn, type) and name[0].islower():
                setattr(module, name, self._wrap(name, fn, wait))

    def _wrap(
        self, name: str, fn: Callable[..., Any], wait: Callable[[], object] | None
    ) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if wait is not None:
                wait()
            began, began_wall = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - began
                wall = time.perf_counter() - began_wall
                with self.lock:
                    self.cpu += spent
                    self.calls[name] += 1
                    self.wall[name] += wall
                    if wall > self.longest[0]:
                        self.longest = (wall, name)

        return call


@dataclass
class Produced:
    """Every tick the fake's market made, as ``(symbol, time_msc)``, once ``recording``."""

    recording: bool = False
    ticks: set[tuple[str, int]] = field(default_factory=set)
    count: int = 0


def install_fake(
    symbols: int,
    rate: float,
    positions: int,
    call_latency_ms: float,
    hold_gil: bool,
    market_thread: bool = False,
) -> tuple[FakeMeter, Produced]:
    """A fresh fake terminal with the symbols, the tick rate and the positions; returns
    its meter and the record of the ticks it produces."""
    import MetaTrader5 as mt5
    from MetaTrader5 import _control, _market

    from fxgate.domain.market import DEFAULT_SYMBOLS

    # fxgate's instruments first, then the fake's synthetic EURUSD.s01 … up to --symbols.
    base = [s.symbol for s in DEFAULT_SYMBOLS][:symbols]
    _control.reset(
        {
            "symbols": base,
            "market_watch": base,
            "synthetic_symbols": symbols - len(base),
            "tick_rate": rate,
            "seed": 1,
            "balance": "10000000",
            "leverage": 500,
            "max_ticks": 20_000,
        }
    )
    terminal = _control.get()
    names = list(terminal.specs)
    assert len(names) == symbols, names
    produced = Produced()
    symbol_of = {id(h): name for name, h in terminal.history.items()}
    add = _market.SymbolHistory.add

    def counted(self: Any, ts: float, bid: float, ask: float) -> tuple[int, int]:
        msc, flags = add(self, ts, bid, ask)
        if produced.recording:
            produced.ticks.add((symbol_of[id(self)], msc))
            produced.count += 1
        return msc, flags

    _market.SymbolHistory.add = counted  # type: ignore[method-assign]
    for i in range(positions):
        _control.open_position(names[i % len(names)], "buy" if i % 2 else "sell", "0.01")
    meter = FakeMeter(mt5, call_latency_ms / 1000, hold_gil=hold_gil)
    if market_thread:
        start_market_thread(terminal, meter)
    return meter, produced


#: How often ``--market-thread`` moves the fake's market on.
MARKET_STEP = 0.005


def start_market_thread(terminal: Any, meter: FakeMeter) -> None:
    """Move the fake's market on every MARKET_STEP in a thread of its own, as a real
    terminal takes its server's ticks in its own process, instead of catching it up
    lazily inside the adapter's next call (where the paper engine's per-tick account
    refresh over every position delays the sweep's first ``copy_ticks_from``, and with
    it every tick of the sweep). Its CPU counts as the fake's."""

    def run() -> None:
        while True:
            time.sleep(MARKET_STEP)
            began = time.thread_time()
            with terminal.lock:
                terminal.pump()
            with meter.lock:
                meter.cpu += time.thread_time() - began

    threading.Thread(target=run, name="fake-market", daemon=True).start()


_installed: Any = None


def api(
    symbols: int,
    rate: float,
    positions: int,
    call_latency_ms: float,
    hold_gil: bool,
    market_thread: bool = False,
) -> Any:
    """In the worker process: the fake, installed once (a reconnect asks again), with
    ``bench_begin``/``bench_end`` beside the package's functions."""
    global _installed
    if _installed is not None:
        return _installed
    import MetaTrader5 as mt5

    meter, produced = install_fake(
        symbols, rate, positions, call_latency_ms, hold_gil, market_thread
    )

    def bench_begin() -> bool:
        produced.ticks.clear()
        produced.count = 0
        produced.recording = True
        with meter.lock:
            meter.cpu = 0.0
            meter.longest = (0.0, "")
            meter.calls.clear()
            meter.wall.clear()
        return True

    def bench_end() -> dict[str, Any]:
        produced.recording = False
        with meter.lock:
            return {
                "cpu": meter.cpu,
                "longest": list(meter.longest),
                "calls": dict(meter.calls),
                "wall": dict(meter.wall),
                "produced": [list(t) for t in produced.ticks],
                "count": produced.count,
            }

    mt5.bench_begin = bench_begin  # type: ignore[attr-defined]
    mt5.bench_end = bench_end  # type: ignore[attr-defined]
    _installed = mt5
    return mt5
