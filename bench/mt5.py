"""MT5 adapter benchmark: the adapter polling a fake terminal, in one process, one table.

The ``mt5`` backend is built from the registry exactly as the daemon builds it (a real
SQLite store, ``MarketService`` stepping the adapter's tick feed), over the fake
``MetaTrader5`` package of ``tests/fake_mt5`` (set up by ``bench/mt5_fake.py``, in the
adapter's worker process, or in this one with ``--worker thread``) with S symbols
ticking at R ticks/s each (fxgate's ten instruments, then the fake's synthetic
``EURUSD.s01`` …) and P positions opened "by hand" before the adapter connects. Over
the measured window it reports:

- the adapter's CPU (the event loop's thread and the terminal worker together: with
  ``--worker process``, the default, the worker's child process counts too; minus the
  time spent inside the fake's own functions, which a real terminal spends in its own
  process), in % of one core;
- the event loop's longest stall while the adapter polls: a 1 ms timer on the loop,
  and how late it fired;
- the tick-to-client latency the adapter adds: from the tick's time in the terminal
  (``time_msc``) to the market service handing the quote to the bus (p50/p99/max);
- that every tick the fake produced was delivered once.

Targets (issue 7): CPU under 10 % of one core, no stall over 5 ms, p99 under one
``poll_interval`` plus 5 ms. See ``bench/README.md`` for the method.

    python bench/mt5.py                      # 30 symbols at 10 Hz, 200 positions, 20 s
    python bench/mt5.py --symbols 30 --rate 10 --positions 200 --duration 20 --call-latency 0.5
    python bench/mt5.py --worker thread      # the terminal's owner a thread, as before
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_mt5"
OWNER = "bench-owner"
CLK_TCK = os.sysconf("SC_CLK_TCK")

CPU_TARGET = 10.0  # % of one core
STALL_TARGET_MS = 5.0
LATENCY_SLACK_MS = 5.0  # p99 under one poll interval plus this
PROBE_INTERVAL = 0.001


def put_fake_first() -> None:
    """``import MetaTrader5`` must find the fake (as ``PYTHONPATH=tests/fake_mt5`` does)."""
    sys.path.insert(0, str(FAKE))
    sys.path.insert(1, str(ROOT))
    for name in [m for m in sys.modules if m == "MetaTrader5" or m.startswith("MetaTrader5.")]:
        del sys.modules[name]


# ---- the event loop's stalls and the process's CPU ------------------------------------------


@dataclass
class Stall:
    """One probe that fired more than ``STALL_TARGET_MS`` late, and where the time went
    since the probe before it (ms): the loop's thread on a CPU (callbacks: the adapter's
    work, or the benchmark's); the process's other threads on a CPU (the store's, the
    terminal's in ``--worker thread``: pinned apart, they share the loop's core, so a
    wait for the CPU while they ran is the process's own); runnable but waiting for a
    CPU beyond that (``schedstat``: other processes, the kernel's threads); the
    hypervisor running something else on that CPU (``steal`` in ``/proc/stat``, 10 ms
    steps); and the rest (asleep off ``epoll``: the GIL held by another thread of this
    process, a page fault, the timer's slack)."""

    late_ms: float
    busy_ms: float
    run_queue_ms: float
    steal_ms: float
    siblings_ms: float = 0.0
    #: Of ``busy_ms``, the time in the loop's callbacks (:class:`CallbackClock`): the
    #: code that ran. The rest of it was charged to the thread outside any callback
    #: (in ``epoll_wait``, the kernel, the hypervisor's accounting), running nothing of
    #: the process's.
    callbacks_ms: float = 0.0

    @property
    def machine_ms(self) -> float:
        """What the machine took: a CPU waited for while no thread of this process ran
        on it, and steal."""
        return max(0.0, self.run_queue_ms - self.siblings_ms) + self.steal_ms

    @property
    def own_ms(self) -> float:
        """What the process's own code held the loop for: its callbacks on the loop's
        thread, and its other threads on the loop's core (one holding the GIL runs, so
        it shows here too). Neither the machine's share nor a timer that fired late
        from idle ("rest") is the adapter's doing."""
        return min(self.late_ms, self.callbacks_ms + self.siblings_ms)

    @property
    def rest_ms(self) -> float:
        return max(0.0, self.late_ms - self.busy_ms - self.run_queue_ms - self.steal_ms)

    def __str__(self) -> str:
        return (
            f"{self.late_ms:.1f} = on CPU {self.busy_ms:.1f} (in callbacks "
            f"{self.callbacks_ms:.1f}) + waiting for a CPU "
            f"{self.run_queue_ms:.1f} (the process's other threads ran "
            f"{self.siblings_ms:.1f}) + steal {self.steal_ms:.0f} + rest {self.rest_ms:.1f}"
        )


class Siblings:
    """CPU time of this process's threads other than the caller (seconds, from each
    thread's ``schedstat``), re-listed now and then as threads come and go."""

    def __init__(self) -> None:
        self._me = threading.get_native_id()
        self._fds: dict[int, int] = {}
        self._calls = 0
        self._relist()

    def _relist(self) -> None:
        tids = {int(t) for t in os.listdir("/proc/self/task")} - {self._me}
        for tid in set(self._fds) - tids:
            os.close(self._fds.pop(tid))
        for tid in tids - set(self._fds):
            with contextlib.suppress(OSError):
                self._fds[tid] = os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY)

    def __call__(self) -> float:
        self._calls += 1
        if self._calls % 5000 == 0:  # threads rarely come and go; listing costs ~2 ms
            self._relist()
        total = 0
        for fd in self._fds.values():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(os.pread(fd, 128, 0).split()[0])
        return total / 1e9

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _steal_reader() -> Any:
    """The hypervisor's steal time of the CPU this thread is pinned to (seconds), or
    None when it is not pinned to one."""
    cpus = os.sched_getaffinity(0)
    if len(cpus) != 1:
        return None
    prefix = f"cpu{next(iter(cpus))} ".encode()
    fd = os.open("/proc/stat", os.O_RDONLY)

    def read() -> float:
        data = os.pread(fd, 4096, 0)
        start = data.index(prefix)
        fields = data[start : data.index(b"\n", start)].split()
        return int(fields[8]) / CLK_TCK

    return read


class CallbackClock:
    """The loop's thread CPU spent inside callbacks, summed (``time.thread_time`` around
    ``asyncio.Handle._run``): what the process's code held the loop for, as opposed
    to CPU time charged to the thread outside any callback. About a microsecond per
    callback; installed for the benchmark's whole run, so its CPU figures include it."""

    def __init__(self) -> None:
        self.total = 0.0
        handle_run = asyncio.events.Handle._run
        clock = self

        def _run(handle: asyncio.events.Handle) -> None:
            began = time.thread_time()
            try:
                return handle_run(handle)
            finally:
                clock.total += time.thread_time() - began

        asyncio.events.Handle._run = _run  # type: ignore[method-assign]


@dataclass
class Probe:
    """A timer every PROBE_INTERVAL on the loop; how late each one fired, and for the
    late ones (:class:`Stall`) where the time went."""

    lateness: list[float] = field(default_factory=list)
    stalls: list[Stall] = field(default_factory=list)
    running: bool = False
    clock: CallbackClock | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.running = True
        sched = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        steal = _steal_reader()

        def waited() -> float:
            return int(os.pread(sched, 128, 0).split()[1]) / 1e9

        siblings = Siblings()
        clock = self.clock

        def in_callbacks() -> float:
            return clock.total if clock is not None else 0.0

        last_cpu, last_wait, last_sib = time.thread_time(), waited(), siblings()
        last_cb = in_callbacks()
        last_steal = steal() if steal is not None else 0.0
        try:
            while self.running:
                due = loop.time() + PROBE_INTERVAL
                await asyncio.sleep(PROBE_INTERVAL)
                late = loop.time() - due
                cpu, wait, sib, cb = time.thread_time(), waited(), siblings(), in_callbacks()
                stolen = steal() if steal is not None else 0.0
                if late * 1000 > STALL_TARGET_MS:
                    self.stalls.append(
                        Stall(
                            1000 * late,
                            1000 * (cpu - last_cpu),
                            1000 * (wait - last_wait),
                            1000 * (stolen - last_steal),
                            1000 * max(0.0, sib - last_sib),
                            1000 * (cb - last_cb),
                        )
                    )
                last_cpu, last_wait, last_steal, last_sib, last_cb = cpu, wait, stolen, sib, cb
                self.lateness.append(late)
        finally:
            os.close(sched)
            siblings.close()


class CallbackMeter:
    """Every callback of the loop timed in thread CPU time (``time.thread_time``), which
    the machine's load does not inflate: what ran on the loop in one go, by task name,
    and the garbage collector's pauses (``gc.callbacks``). Wraps ``asyncio.Handle._run``
    while ``recording``; a diagnostic of the benchmark, not of fxgate."""

    def __init__(self) -> None:
        self.recording = False
        self.longest: list[tuple[float, str]] = []
        self.gc: list[tuple[float, int]] = []
        self._gc_began = 0.0
        #: The loop's longest iterations in CPU, with what ran in each: a stall is an
        #: iteration, and several short callbacks ready together make a long one.
        self.iterations: list[tuple[float, list[tuple[float, str]]]] = []
        self._current: list[tuple[float, str]] = []
        handle_run = asyncio.events.Handle._run
        run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]
        meter = self

        def _run(handle: asyncio.events.Handle) -> None:
            if not meter.recording:
                return handle_run(handle)
            began = time.thread_time()
            try:
                return handle_run(handle)
            finally:
                spent = time.thread_time() - began
                meter._current.append((spent, meter.name(handle)))
                if spent > 0.001:
                    meter.longest.append((spent, meter.name(handle)))

        def _run_once(loop: asyncio.AbstractEventLoop) -> None:
            if not meter.recording:
                return run_once(loop)  # type: ignore[no-any-return]
            meter._current = []
            began = time.thread_time()
            try:
                return run_once(loop)  # type: ignore[no-any-return]
            finally:
                spent = time.thread_time() - began
                if spent > 0.002:
                    meter.iterations.append((spent, meter._current))

        asyncio.events.Handle._run = _run  # type: ignore[method-assign]
        asyncio.base_events.BaseEventLoop._run_once = _run_once  # type: ignore[attr-defined]
        gc.callbacks.append(self._on_gc)

    @staticmethod
    def name(handle: asyncio.events.Handle) -> str:
        callback = getattr(handle, "_callback", None)
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            return task.get_name()
        return getattr(callback, "__qualname__", repr(callback))

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_began = time.perf_counter()
        elif self.recording:
            self.gc.append((time.perf_counter() - self._gc_began, int(info["generation"])))


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of every thread of this process, by native id."""
    out: dict[int, float] = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def run_queue_wait(tid: int) -> float:
    """Seconds thread ``tid`` of this process has spent runnable but waiting for a CPU
    (``schedstat``): a stall with this high is the machine's load; a thread waiting for
    the GIL sleeps, so a GIL stall does not show here."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except OSError:
        return float("nan")


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


# ---- one run --------------------------------------------------------------------------------


@dataclass
class Result:
    symbols: int
    rate: float
    positions: int
    poll_interval: float
    trade_poll_interval: float
    call_latency_ms: float
    hold_gil: bool
    duration: float
    worker: str = "process"
    market_thread: bool = False
    ticks_produced: int = 0
    ticks_delivered: int = 0
    ticks_repeated: int = 0
    ticks_missing: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    stall_max_ms: float = 0.0
    stalls_over_target: int = 0
    probe_samples: int = 0
    #: The longest stalls over the target, each split by where the time went (Stall).
    stalls: list[str] = field(default_factory=list)
    #: The adapter's share of the longest stall (Stall.own_ms): the target's measure.
    stall_own_max_ms: float = 0.0
    cpu_total_pct: float = 0.0
    cpu_fake_pct: float = 0.0
    cpu_probe_pct: float = 0.0
    cpu_adapter_pct: float = 0.0
    cpu_loop_pct: float = 0.0
    cpu_worker_pct: float = 0.0
    cpu_child_pct: float = 0.0
    other_load_pct: float = 0.0
    #: how long the loop's thread was runnable but had no CPU, ms per second (load)
    loop_cpu_wait_ms_per_s: float = 0.0
    events: dict[str, int] = field(default_factory=dict)
    fake_calls_per_sec: float = 0.0
    fake_longest_call_ms: float = 0.0
    fake_longest_call: str = ""
    #: per function of the fake: calls/s in the window and mean wall ms a call
    fake_calls: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: ``--callbacks``: the loop's longest callbacks in thread CPU ms, by task name, and
    #: the garbage collector's pauses (wall ms, generation)
    callbacks_cpu_ms: list[tuple[float, str]] = field(default_factory=list)
    gc_pauses_ms: list[tuple[float, int]] = field(default_factory=list)
    #: ``--callbacks``: the longest loop iterations in CPU ms, with their callbacks.
    iterations_cpu_ms: list[Any] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def measure_probe_cost(seconds: float, clock: CallbackClock | None = None) -> float:
    """The probe's own CPU, % of a core, with nothing else running (subtracted later)."""
    probe = Probe(clock=clock)
    began_cpu, began = time.process_time(), time.perf_counter()
    task = asyncio.create_task(probe.run())
    await asyncio.sleep(seconds)
    probe.running = False
    await task
    return 100 * (time.process_time() - began_cpu) / (time.perf_counter() - began)


@dataclass
class FakeStats:
    """What the fake did in the measured window."""

    cpu: float
    longest: tuple[float, str]
    calls: Counter[str]
    wall: dict[str, float]
    produced: set[tuple[str, int]]
    count: int
    child_cpu: float = 0.0  # the worker process's own CPU (process mode)


class InProcessFake:
    """``--worker thread``: the fake in this process, read directly."""

    def __init__(self, args: argparse.Namespace) -> None:
        from mt5_fake import install_fake

        self.meter, self.produced = install_fake(
            args.symbols,
            args.rate,
            args.positions,
            args.call_latency,
            args.hold_gil,
            args.market_thread,
        )

    def attach(self, broker: Any) -> None:
        pass

    async def begin(self) -> None:
        self.produced.recording = True
        with self.meter.lock:
            self.meter.cpu = 0.0
            self.meter.longest = (0.0, "")
            self.meter.calls.clear()
            self.meter.wall.clear()

    async def end(self) -> FakeStats:
        self.produced.recording = False
        m = self.meter
        with m.lock:
            return FakeStats(
                m.cpu, m.longest, Counter(m.calls), dict(m.wall), set(self.produced.ticks),
                self.produced.count,
            )  # fmt: skip


class ChildFake:
    """``--worker process``: the fake in the adapter's worker process, set up there by
    ``mt5_fake.api`` and read back over the worker's pipe."""

    def __init__(self, args: argparse.Namespace) -> None:
        from fxgate.brokers.mt5.process import ProcessTerminal

        options = {
            "symbols": args.symbols,
            "rate": args.rate,
            "positions": args.positions,
            "call_latency_ms": args.call_latency,
            "hold_gil": args.hold_gil,
            "market_thread": args.market_thread,
        }
        path = os.pathsep.join([str(FAKE), str(ROOT), str(ROOT / "bench")])
        self.terminal = ProcessTerminal(("mt5_fake", "api", options), env={"PYTHONPATH": path})
        self._child_cpu = 0.0
        self._apart = args.pin is None and not args.no_pin and len(os.sched_getaffinity(0)) >= 2

    def attach(self, broker: Any) -> None:
        broker.terminal = self.terminal  # instead of the real package's spec

    async def begin(self) -> None:
        await self.terminal.call("bench_begin")
        if self._apart and self.terminal.pid is not None:
            pin_apart(self.terminal.pid)
        self._child_cpu = process_cpu(self.terminal.pid)

    async def end(self) -> FakeStats:
        got = await self.terminal.call("bench_end")
        child = process_cpu(self.terminal.pid) - self._child_cpu
        return FakeStats(
            got["cpu"], tuple(got["longest"]), Counter(got["calls"]), got["wall"],  # type: ignore[arg-type]
            {(sym, msc) for sym, msc in got["produced"]}, got["count"], child,
        )  # fmt: skip


def pin_apart(child: int) -> None:
    """The daemon's side (the event loop, this process) on CPU 0, the worker process (the
    terminal's owner, and the fake terminal in it) on CPU 1: on a VPS the terminal is a
    process of its own, and the daemon's loop should not queue behind it for a core, as
    ``fanout.py`` keeps the daemon and the load generator apart."""
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), {0})
    for tid in os.listdir(f"/proc/{child}/task"):
        os.sched_setaffinity(int(tid), {1})


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of another process."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def run(args: argparse.Namespace, state_dir: Path) -> Result:
    from fxgate.app.backends import BROKERS, STORES
    from fxgate.config.settings import Settings
    from fxgate.domain.events import Event
    from fxgate.services.market import MarketService
    from fxgate.services.ports.broker import BrokerEvent

    result = Result(
        symbols=args.symbols,
        rate=args.rate,
        positions=args.positions,
        poll_interval=args.poll_interval,
        trade_poll_interval=args.trade_poll_interval,
        call_latency_ms=args.call_latency,
        hold_gil=args.hold_gil,
        duration=args.duration,
        worker=args.worker,
        market_thread=args.market_thread,
    )
    if args.sweep_part is not None:
        from fxgate.brokers.mt5 import session

        session.SWEEP_PART = args.sweep_part
    clock = CallbackClock()
    probe_cost = await measure_probe_cost(min(2.0, max(0.5, args.warmup)), clock)
    fake = InProcessFake(args) if args.worker == "thread" else ChildFake(args)
    settings = Settings(
        state_dir=state_dir,
        broker={"backend": "mt5"},
        mt5={
            "owner": OWNER,
            "poll_interval": args.poll_interval,
            "trade_poll_interval": args.trade_poll_interval,
            "worker": args.worker,
        },
    )
    problems = BROKERS.problems("mt5", settings)
    if problems:
        raise SystemExit("; ".join(problems))
    store = STORES.builder(settings.store.backend)(settings)
    await store.open()
    backend = BROKERS.builder("mt5")(settings, store)
    fake.attach(backend.broker)

    measuring = False
    latencies: list[float] = []
    seen: Counter[tuple[str, int]] = Counter()
    delivered: Counter[str] = Counter()
    events: Counter[str] = Counter()

    def publish(event: Event) -> None:
        quote = event.data
        if getattr(quote, "stale", False):
            return
        seen[(quote.symbol, round(quote.ts * 1000))] += 1
        if measuring:
            delivered[quote.symbol] += 1
            latencies.append(time.time() - quote.ts)

    def listen(event: BrokerEvent) -> None:
        if measuring:
            events[f"{event.kind}{' (floating)' if event.floating else ''}"] += 1

    market = MarketService(backend.quotes, publish)
    backend.broker.subscribe(listen)
    await backend.broker.start()
    if backend.on_quote is not None:
        market.add_listener(backend.on_quote)
    feed = asyncio.create_task(market.run(), name="market-feed")
    sys.setswitchinterval(settings.server.switch_interval)  # as fxgate serve does
    if settings.server.gc_freeze and not args.no_gc_freeze:
        # What ``fxgate serve`` does once it is built (fxgate/ops/serve.py): without it
        # a generation-2 collection of everything imported and built (~10-20 ms here)
        # lands in some poll's callback, the benchmark's longest "stall".
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
    probe = Probe(clock=clock)
    probe_task = asyncio.create_task(probe.run(), name="probe")
    callbacks = CallbackMeter() if args.callbacks else None
    try:
        await asyncio.sleep(args.warmup)
        loop_tid = threading.get_native_id()
        await fake.begin()
        cpu_before, busy_before = thread_cpu(), machine_busy()
        waited_before = run_queue_wait(loop_tid)
        probe.lateness.clear()
        probe.stalls.clear()
        if callbacks is not None:
            callbacks.recording = True
        measuring, began = True, time.perf_counter()
        await asyncio.sleep(args.duration)
        measuring, elapsed = False, time.perf_counter() - began
        # The window's probe samples only: what follows (reading the fake's record of
        # produced ticks back, a large pickle) is the benchmark's own work, not a stall.
        window = list(probe.lateness)
        stalls = list(probe.stalls)
        if callbacks is not None:
            callbacks.recording = False
        cpu_after, busy_after = thread_cpu(), machine_busy()
        waited = run_queue_wait(loop_tid) - waited_before
        stats = await fake.end()
        await backend.broker.flush()
        await asyncio.sleep(2 * args.poll_interval)
    finally:
        probe.running = False
        await probe_task
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
        await backend.broker.stop()
        await store.close()

    spent = {tid: cpu_after[tid] - cpu_before.get(tid, 0.0) for tid in cpu_after}
    total = sum(spent.values()) + stats.child_cpu
    loop_cpu = spent.get(loop_tid, 0.0)
    result.cpu_total_pct = 100 * total / elapsed
    result.cpu_loop_pct = 100 * loop_cpu / elapsed
    result.cpu_worker_pct = 100 * (total - loop_cpu) / elapsed
    result.cpu_child_pct = 100 * stats.child_cpu / elapsed
    result.cpu_fake_pct = 100 * stats.cpu / elapsed
    result.other_load_pct = max(0.0, 100 * (busy_after - busy_before - total) / elapsed)
    result.cpu_probe_pct = probe_cost
    result.loop_cpu_wait_ms_per_s = 1000 * waited / elapsed
    result.cpu_adapter_pct = max(
        0.0, result.cpu_total_pct - result.cpu_fake_pct - result.cpu_probe_pct
    )
    result.fake_calls_per_sec = stats.calls.total() / elapsed
    result.fake_longest_call_ms = 1000 * stats.longest[0]
    result.fake_longest_call = stats.longest[1]
    result.fake_calls = {
        name: (round(n / elapsed, 1), round(1000 * stats.wall[name] / n, 3))
        for name, n in stats.calls.most_common()
    }
    result.duration = elapsed
    result.ticks_produced = stats.count
    result.ticks_repeated = sum(n - 1 for n in seen.values() if n > 1)
    result.ticks_delivered = sum(delivered.values())
    result.ticks_missing = len(stats.produced - set(seen))
    result.latency_p50_ms = 1000 * percentile(latencies, 50)
    result.latency_p99_ms = 1000 * percentile(latencies, 99)
    result.latency_max_ms = 1000 * max(latencies, default=float("nan"))
    result.stall_max_ms = 1000 * max(window, default=0.0)
    result.stalls_over_target = sum(1 for s in window if s * 1000 > STALL_TARGET_MS)
    result.probe_samples = len(window)
    result.stalls = [str(x) for x in sorted(stalls, key=lambda x: -x.late_ms)[:5]]
    under = [1000 * x for x in window if x * 1000 <= STALL_TARGET_MS]
    result.stall_own_max_ms = max([*under, *(x.own_ms for x in stalls)], default=0.0)
    if not getattr(fake, "_apart", False):
        # The terminal's worker may share the loop's CPU (a thread of this process, or
        # a process the scheduler put there): a CPU waited for may be its doing.
        result.stall_own_max_ms = result.stall_max_ms
    result.events = dict(sorted(events.items()))
    if callbacks is not None:
        result.callbacks_cpu_ms = [
            (round(1000 * t, 2), name) for t, name in sorted(callbacks.longest, reverse=True)[:8]
        ]
        result.iterations_cpu_ms = [
            (round(1000 * t, 2), [(round(1000 * c, 2), n) for c, n in parts if c > 0.0002])
            for t, parts in sorted(callbacks.iterations, key=lambda x: -x[0])[:5]
        ]
        result.gc_pauses_ms = [
            (round(1000 * t, 2), g) for t, g in sorted(callbacks.gc, reverse=True)
        ]
    result.failures = judge(result)
    return result


def judge(r: Result) -> list[str]:
    out = []
    if r.cpu_adapter_pct >= CPU_TARGET:
        out.append(f"adapter CPU {r.cpu_adapter_pct:.1f} % >= {CPU_TARGET:.0f} % of one core")
    if r.stall_own_max_ms > STALL_TARGET_MS:
        out.append(
            f"longest stall {r.stall_own_max_ms:.1f} ms > {STALL_TARGET_MS:.0f} ms of the"
            " adapter's own (its callbacks and threads; the machine's share not counted)"
        )
    bound = 1000 * r.poll_interval + LATENCY_SLACK_MS
    if not r.latency_p99_ms < bound:
        out.append(f"p99 added latency {r.latency_p99_ms:.1f} ms >= {bound:.0f} ms")
    if r.ticks_repeated:
        out.append(f"{r.ticks_repeated} ticks delivered more than once")
    if r.ticks_missing:
        out.append(f"{r.ticks_missing} ticks produced but never delivered")
    if not r.ticks_delivered:
        out.append("no tick delivered")
    return out


# ---- output ---------------------------------------------------------------------------------

HEADER = (
    "| symbols × ticks/s | positions | ticks/s observed | adapter CPU % | loop / worker / fake % "
    "| longest stall ms (the adapter's share) | stalls > 5 ms "
    "| added latency p50 / p99 / max ms | repeated / missing | other load % |"
)


def row(r: Result) -> str:
    return (
        f"| {r.symbols} × {r.rate:g} | {r.positions} | {r.ticks_produced / r.duration:,.0f} "
        f"| {r.cpu_adapter_pct:.1f} | {r.cpu_loop_pct:.1f} / {r.cpu_worker_pct:.1f} / "
        f"{r.cpu_fake_pct:.1f} | {r.stall_max_ms:.1f} ({r.stall_own_max_ms:.1f}) "
        f"| {r.stalls_over_target} "
        f"| {r.latency_p50_ms:.1f} / {r.latency_p99_ms:.1f} / {r.latency_max_ms:.1f} "
        f"| {r.ticks_repeated} / {r.ticks_missing} | {r.other_load_pct:.0f} |"
    )


def print_table(results: list[Result]) -> None:
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for r in results:
        print(row(r))
    print()
    for r in results:
        label = f"{r.symbols} × {r.rate:g}, {r.positions} positions, worker {r.worker}"
        if r.worker == "process":
            label += f" (its process {r.cpu_child_pct:.1f} %, fake included)"
        gil = " (GIL held)" if r.hold_gil else ""
        if not r.market_thread:
            label += ", the fake's market lazy (inside the adapter's calls)"
        print(
            f"- {label}: poll {r.poll_interval * 1000:.0f} ms, trade poll "
            f"{r.trade_poll_interval * 1000:.0f} ms, call latency {r.call_latency_ms:g} ms{gil}; "
            f"{r.fake_calls_per_sec:,.0f} terminal calls/s, the longest "
            f"{r.fake_longest_call_ms:.1f} ms ({r.fake_longest_call}); process CPU "
            f"{r.cpu_total_pct:.1f} % (probe {r.cpu_probe_pct:.1f} % and fake "
            f"{r.cpu_fake_pct:.1f} % excluded); the loop waited for a CPU "
            f"{r.loop_cpu_wait_ms_per_s:.1f} ms/s; events in the window {r.events}"
        )
        if r.callbacks_cpu_ms or r.gc_pauses_ms:
            print(f"  longest loop callbacks (thread CPU ms, task): {r.callbacks_cpu_ms}")
            for total, parts in r.iterations_cpu_ms:
                print(f"  a loop iteration of {total} ms CPU: {parts}")
            gen2 = [p for p in r.gc_pauses_ms if p[1] == 2]
            print(
                f"  gc: {len(r.gc_pauses_ms)} collections, longest {r.gc_pauses_ms[:3]} "
                f"(ms, generation); {len(gen2)} of generation 2"
            )
        if r.stalls:
            print(f"  stalls over {STALL_TARGET_MS:.0f} ms, ms: " + "; ".join(r.stalls))
        for failure in r.failures:
            print(f"  NOT MET: {failure}")
        if not r.failures:
            print("  every target met")


@contextlib.contextmanager
def state_folder(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fxgate-bench-mt5-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbols", type=int, default=30, help="symbols streamed (default 30)")
    p.add_argument("--rate", type=float, default=10.0, help="mean ticks/s per symbol (10)")
    p.add_argument("--positions", type=int, default=200, help="open positions (200)")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds (20)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (3)")
    p.add_argument("--poll-interval", type=float, default=0.1, help="mt5.poll_interval (0.1)")
    p.add_argument(
        "--trade-poll-interval", type=float, default=0.25, help="mt5.trade_poll_interval (0.25)"
    )
    p.add_argument(
        "--call-latency",
        type=float,
        default=0.0,
        help="ms each terminal call sleeps first (GIL released), standing for the pipe (0)",
    )
    p.add_argument(
        "--hold-gil",
        action="store_true",
        help="the call latency holds the GIL (as a package that blocks without releasing it)",
    )
    p.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval in ms (Python's default 5): a diagnostic for GIL waits",
    )
    p.add_argument(
        "--worker",
        choices=["process", "thread"],
        default="process",
        help="mt5.worker: the terminal's owner in a child process (default) or a thread",
    )
    p.add_argument(
        "--sweep-part",
        type=int,
        default=None,
        help="symbols per part of a tick sweep (session.SWEEP_PART, 5): a diagnostic",
    )
    p.add_argument(
        "--callbacks",
        action="store_true",
        help="time every loop callback in thread CPU (load-proof) and the gc's pauses",
    )
    p.add_argument(
        "--lazy-market",
        dest="market_thread",
        action="store_false",
        help="the fake's market catches up lazily inside the adapter's next call (the fake's"
        " cost then delays the sweeps) instead of moving in its own thread, as a real"
        " terminal's market does (the default)",
    )
    p.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="leave the cyclic GC as Python sets it (fxgate serve freezes it: server.gc_freeze)",
    )
    p.add_argument("--pin", type=int, default=None, help="run on this CPU only (sched_setaffinity)")
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="leave placement to the scheduler (default with two CPUs or more: the loop on"
        " CPU 0, the worker process with the fake on CPU 1)",
    )
    p.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    p.add_argument("--keep-state", action="store_true", help="keep the SQLite state folder")
    args = p.parse_args()
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval / 1000)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    put_fake_first()
    with state_folder(args.keep_state) as state_dir:
        result = asyncio.run(run(args, state_dir))
    print_table([result])
    if args.json is not None:
        args.json.write_text(json.dumps([dataclasses.asdict(result)], indent=2))
    if args.strict and result.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
