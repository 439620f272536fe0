"""``fxgate serve --workers N``: a supervisor and N worker processes on one listener.

The supervisor binds the port itself and hands the bound socket to each worker
(``--listen-fd``), rather than every worker binding it with ``SO_REUSEPORT``:

- a port in use is reported once, by the supervisor, before any worker touches state;
- ``port = 0`` gives every worker the *same* port, and a restarted worker gets that same
  socket back: the port is never unbound while the service runs, so no connection is
  refused in the window a restart would open with ``SO_REUSEPORT`` (where the kernel's
  hash also keeps sending a dead worker's share of new connections to its group until
  it rebinds);
- it needs nothing of the platform beyond inheriting a descriptor.

The price is that the kernel wakes the workers in turn on one accept queue, which spreads
connections less evenly than ``SO_REUSEPORT``'s hash on a busy host; with a few workers
on a few cores it is even enough (the bench measures it).

Each worker is a plain ``fxgate serve`` process (own event loop, hub and node) that
reports on a pipe: ``R`` when it serves, ``W`` every second while its loop runs. The
supervisor alone speaks to systemd: ``READY=1`` when every worker is ready, ``WATCHDOG=1``
only while every worker's heartbeat is fresh, ``STOPPING=1`` on SIGTERM, which it passes
to every worker (each drains its clients as one process does) before it exits. A worker
that dies is started again, after a back-off that grows while it keeps dying; its clients
reconnect, and the kernel gives them to the workers still accepting.

The first worker starts alone and the others once it is ready, so that the one-time
creation of the master key, the signing key and the store's schema is never raced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from fxgate.config.settings import Settings
from fxgate.ops import systemd

log = logging.getLogger("fxgate")

#: Seconds between a worker's heartbeats, and how stale one may be before the
#: supervisor stops telling systemd all is well.
HEARTBEAT = 1.0
STALE = 5 * HEARTBEAT
#: Restart back-off: first delay, ceiling, and how long a worker must live to reset it.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
BACKOFF_RESET = 30.0


@dataclass
class Worker:
    slot: int
    proc: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    beat: float = 0.0
    started: float = 0.0
    failures: int = 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class Supervisor:
    def __init__(self, settings: Settings, sock: socket.socket, argv: list[str]) -> None:
        self.settings = settings
        self.sock = sock
        #: ``fxgate serve`` arguments a worker is started with (its --config).
        self.argv = argv
        self.workers = [Worker(slot) for slot in range(settings.server.workers)]
        self.stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def _spawn(self, worker: Worker) -> None:
        read_fd, write_fd = os.pipe()
        env = {k: v for k, v in os.environ.items() if k not in _SYSTEMD_ENV}
        worker.ready = asyncio.Event()
        worker.beat = time.monotonic()
        worker.started = time.monotonic()
        try:
            worker.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "fxgate",
                "serve",
                *self.argv,
                "--listen-fd",
                str(self.sock.fileno()),
                "--status-fd",
                str(write_fd),
                pass_fds=(self.sock.fileno(), write_fd),
                env=env,
            )
        finally:
            os.close(write_fd)
        log.info("worker started", extra={"worker": worker.slot, "pid": worker.proc.pid})
        self._keep(self._read_status(worker, read_fd))
        self._keep(self._watch(worker, worker.proc))

    def _keep(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_status(self, worker: Worker, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            while chunk := await reader.read(64):
                worker.beat = time.monotonic()
                if b"R" in chunk:
                    worker.ready.set()
        finally:
            transport.close()

    async def _watch(self, worker: Worker, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self.stopping:
            return
        lived = time.monotonic() - worker.started
        worker.failures = 1 if lived > BACKOFF_RESET else worker.failures + 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (worker.failures - 1))
        log.warning(
            "worker exited; restarting",
            extra={"worker": worker.slot, "pid": proc.pid, "code": code, "delay": delay},
        )
        await asyncio.sleep(delay)
        if not self.stopping:
            await self._spawn(worker)

    def healthy(self) -> bool:
        now = time.monotonic()
        return all(w.alive() and w.ready.is_set() and now - w.beat < STALE for w in self.workers)

    async def _start_all(self, within: float) -> None:
        first, *rest = self.workers
        await self._spawn(first)
        await self._ready(first, within)
        for worker in rest:
            await self._spawn(worker)
        for worker in rest:
            await self._ready(worker, within)

    async def _ready(self, worker: Worker, within: float) -> None:
        assert worker.proc is not None
        waiter = asyncio.ensure_future(worker.ready.wait())
        died = asyncio.ensure_future(worker.proc.wait())
        done, _ = await asyncio.wait({waiter, died}, timeout=within, return_when="FIRST_COMPLETED")
        waiter.cancel()
        died.cancel()
        if waiter not in done:
            raise WorkerStartError(f"worker {worker.slot} did not start (see its lines above)")

    async def run(self) -> int:
        stop = asyncio.Event()
        from fxgate.ops.serve import on_signals

        on_signals(asyncio.get_running_loop(), stop.set)
        try:
            await self._start_all(within=120)
        except WorkerStartError as exc:
            log.error("%s", exc)
            await self._stop_workers()
            return 1
        port = self.sock.getsockname()[1]
        log.info(
            "fxgate workers ready",
            extra={"port": port, "workers": len(self.workers), "pid": os.getpid()},
        )
        systemd.notify(
            f"READY=1\nSTATUS=serving on port {port} with {len(self.workers)} workers\n"
            f"MAINPID={os.getpid()}"
        )
        interval = systemd.watchdog_interval()
        if interval:
            self._keep(self._watchdog(interval))
        await stop.wait()
        log.info("shutting down workers", extra={"workers": len(self.workers)})
        systemd.notify("STOPPING=1")
        await self._stop_workers()
        log.info("stopped")
        return 0

    async def _watchdog(self, interval: float) -> None:
        """WATCHDOG=1 only while every worker is alive and beating: a worker stuck in
        a loop that never yields makes systemd restart the whole service."""
        while True:
            if self.healthy():
                systemd.notify("WATCHDOG=1")
            await asyncio.sleep(min(interval, HEARTBEAT))

    async def _stop_workers(self) -> None:
        self.stopping = True
        procs = [w.proc for w in self.workers if w.alive()]
        for proc in procs:
            assert proc is not None
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        grace = self.settings.server.shutdown_grace + 10
        waits = [asyncio.ensure_future(p.wait()) for p in procs if p is not None]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=grace)
            for proc in procs:
                if proc is not None and proc.returncode is None:
                    log.error("worker did not stop; killing it", extra={"pid": proc.pid})
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            if pending:
                await asyncio.wait(pending, timeout=5)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class WorkerStartError(Exception):
    """A worker exited or hung before it was ready."""


#: What systemd hands the main process: the supervisor's alone (NotifyAccess=main).
_SYSTEMD_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")


def supervise(settings: Settings, argv: list[str]) -> int:
    """Bind the port, run the workers until SIGTERM/SIGINT; the exit code."""
    from fxgate.web.server import listen

    sock = listen(settings)[0]
    sock.set_inheritable(True)
    try:
        return asyncio.run(Supervisor(settings, sock, argv).run())
    finally:
        sock.close()


class StatusPipe:
    """A worker's side of the pipe: ``R`` once ready, ``W`` while its loop runs."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)

    def send(self, what: bytes) -> None:
        # Non-blocking: a supervisor that stopped reading must not stall the worker.
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(self._fd, what)

    async def beat(self) -> None:
        while True:
            self.send(b"W")
            await asyncio.sleep(HEARTBEAT)
