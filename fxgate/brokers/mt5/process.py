"""The terminal's owner as a child process (``mt5.worker = "process"``, the default).

The package's calls, its results' conversion to plain values (``_asdict()``, numpy rows)
and the tick cursors' filtering run in :mod:`.worker`, a child started with
``python -m fxgate.brokers.mt5.worker``, so none of that Python holds the event loop's
GIL; only the compact plain answers cross, as pickles over the child's stdin/stdout
(:mod:`.wire`), read by the event loop itself (asyncio's subprocess pipes: no thread of
ours, on Windows too, where asyncio's default Proactor loop runs them).

Why a plain subprocess and not ``multiprocessing``: the child needs nothing of the
daemon's state, so the spawn method's re-import of the daemon's ``__main__`` (and its
``if __name__ == "__main__"`` rules on Windows), its resource-tracker process and its
pickled start-up bring nothing; ``ps`` shows what the process is; and the parent reads
the pipe without a thread.

Faults: a child that exits (crashed, killed, the package aborted the interpreter) fails
every job it had with :data:`~.terminal.WORKER_LOST`, a lost terminal: the adapter goes
``DOWN`` and reconnects with its backoff, and the next job starts a new child. A job
whose answer never came is therefore a lost answer, which the order path resolves
against the terminal's orders and history before anything is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from fxgate.brokers.mt5 import wire
from fxgate.brokers.mt5.terminal import WORKER_LOST, TerminalError

log = logging.getLogger(__name__)

#: ``(module, function, kwargs)``: what the child calls to get the package.
ApiSpec = tuple[str, str, dict[str, Any]]
CHILD = "fxgate.brokers.mt5.worker"
#: How long a child that was told to end (its stdin closed) has before it is killed.
EXIT_GRACE = 5.0
#: Room for a large answer (a long history) in one read of the pipe.
PIPE_LIMIT = 1 << 20


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The daemon's environment (plus ``extra``) with its import path: the child imports
    what the daemon would (this fxgate, a fake put first on ``sys.path``), and with
    ``-P`` nothing else (not its working directory)."""
    env = {**os.environ, **(extra or {})}
    path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    path += [p for p in sys.path if p and p not in path]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def package_api(bridge: str) -> ApiSpec:
    """The real package (or the mt5linux client), as the child imports it."""
    return ("fxgate.brokers.mt5.terminal", "import_api", {"bridge": bridge})


class ProcessTerminal:
    """A :class:`~.terminal.Worker` in a child process, started at the first job (so a
    terminal that is away fails a call, not the daemon's start-up) and again after the
    child died. ``env`` adds to the child's environment (tests, the benchmark)."""

    def __init__(self, api: ApiSpec, *, env: Mapping[str, str] | None = None) -> None:
        self._api = api
        self._env = dict(env or {})
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._starting = asyncio.Lock()
        self._readers: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    async def run(self, job: str, *args: Any) -> Any:
        proc = await self._child(job)
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            self._send(proc, (ident, job, args), job)
            return await future
        finally:
            self._pending.pop(ident, None)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await self.run("call", name, args, kwargs)

    def forget(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(TerminalError):
                self._send(self._proc, (0, wire.FORGET, ()), wire.FORGET)

    async def close(self) -> None:
        """Close the child's stdin (it ends at once), reap it, kill it if it lingers."""
        self._closed = True
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), EXIT_GRACE)
            except TimeoutError:
                log.warning("mt5 worker process did not exit; killing it", extra={"pid": proc.pid})
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._readers:
            await asyncio.gather(*self._readers, return_exceptions=True)

    # -- the child ---------------------------------------------------------------------

    async def _child(self, job: str) -> asyncio.subprocess.Process:
        if self._closed:
            raise TerminalError(WORKER_LOST, "the terminal's worker is stopped", job)
        async with self._starting:
            if self._proc is None:
                self._proc = await self._start(job)
            return self._proc

    async def _start(self, job: str) -> asyncio.subprocess.Process:
        env = child_env(self._env)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",  # not the working directory first on sys.path: no MetaTrader5.py from it
                "-m",
                CHILD,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=PIPE_LIMIT,
            )
        except OSError as exc:
            raise TerminalError(
                WORKER_LOST, f"cannot start the worker process: {exc}", job
            ) from None
        level = logging.getLogger("fxgate").getEffectiveLevel()
        self._send(proc, ("api", *self._api, level), job)
        reader = asyncio.get_running_loop().create_task(self._read(proc), name="mt5-worker")
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        log.info("mt5 worker process started", extra={"pid": proc.pid})
        return proc

    def _send(self, proc: asyncio.subprocess.Process, message: Any, job: str) -> None:
        assert proc.stdin is not None
        if proc.stdin.is_closing():
            raise TerminalError(WORKER_LOST, "the terminal's worker process exited", job)
        proc.stdin.write(wire.frame(message))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        """The child's answers, until it exits; then every job it had fails as lost."""
        assert proc.stdout is not None
        try:
            while True:
                self._take(await wire.read_async(proc.stdout))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        if self._proc is proc:
            self._proc = None
        lost, self._pending = self._pending, {}
        code = await proc.wait()
        if not self._closed:
            log.warning("mt5 worker process exited", extra={"pid": proc.pid, "returncode": code})
        for future in lost.values():
            if not future.done():
                future.set_exception(
                    TerminalError(
                        WORKER_LOST, f"the terminal's worker process exited ({code})", "worker"
                    )
                )

    def _take(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "log":
            _, name, level, text, extra = message
            try:
                logging.getLogger(name).log(level, "%s", text, extra=extra)
            except KeyError:  # an extra that would overwrite a record attribute
                logging.getLogger(name).log(level, "%s %r", text, extra)
            return
        future = self._pending.pop(message[1], None)
        if future is None or future.done():
            return  # its caller gave up (cancelled); the answer is not wanted
        if kind == "ok":
            future.set_result(message[2])
        elif kind == "err":
            future.set_exception(TerminalError(message[2], message[3], message[4]))
        else:
            future.set_exception(RuntimeError(f"mt5 worker: {message[2]}"))
