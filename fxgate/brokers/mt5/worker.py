"""The worker process that owns the terminal: ``python -m fxgate.brokers.mt5.worker``.

Started by :class:`~.process.ProcessTerminal`, one per adapter, it is the only process
that imports ``MetaTrader5`` (or talks to the ``mt5linux`` bridge). It reads jobs from
the stdin and answers on the stdout it was started with, one job at a time, in order.
Its log records go to the parent over the same pipe, to be written as the daemon's own.

It never outlives the daemon: a reader thread takes the jobs off stdin, and end of file
there (the daemon closed it, exited, or was killed with ``kill -9``) ends the process at
once, even while a call to the terminal is still blocked. Ctrl-C (SIGINT, sent to the
whole process group) is ignored: the daemon ends its worker as it stops.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import queue
import signal
import sys
import threading
from typing import Any, BinaryIO

from fxgate.brokers.mt5 import wire
from fxgate.brokers.mt5.jobs import Owner
from fxgate.brokers.mt5.terminal import TerminalError

log = logging.getLogger(__name__)


class Pipe:
    """The answers' end of the pipe; writes from any thread (a job, a log record)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: Any) -> None:
        data = wire.frame(message)
        with self._lock:
            self._stream.write(data)
            self._stream.flush()


class ToParent(logging.Handler):
    """Log records as ``("log", ...)`` frames, re-emitted by the parent's logger."""

    _FIELDS = frozenset(vars(logging.makeLogRecord({})))

    def __init__(self, pipe: Pipe) -> None:
        super().__init__()
        self._pipe = pipe

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            extra = {k: v for k, v in vars(record).items() if k not in self._FIELDS}
            extra = {k: v if isinstance(v, int | float | str | bool) else repr(v)
                     for k, v in extra.items()}  # fmt: skip
            self._pipe.send(("log", record.name, record.levelno, message, extra))
        except Exception:
            self.handleError(record)


def api_factory(module: str, function: str, kwargs: dict[str, Any]) -> Any:
    return getattr(importlib.import_module(module), function)(**kwargs)


def serve(jobs: BinaryIO, answers: BinaryIO) -> None:
    pipe = Pipe(answers)
    hello = wire.read(jobs)
    if hello is None:
        return
    _, module, function, kwargs, level = hello
    root = logging.getLogger()
    root.handlers[:] = [ToParent(pipe)]
    root.setLevel(level)
    owner = Owner(lambda: api_factory(module, function, kwargs))
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def take_jobs() -> None:
        while (message := wire.read(jobs)) is not None:
            inbox.put(message)
        os._exit(0)  # the daemon is gone (or closed the pipe): end now, mid-call or not

    threading.Thread(target=take_jobs, name="mt5-jobs", daemon=True).start()
    while True:
        ident, job, args = inbox.get()
        if job == wire.FORGET:
            owner.forget()
            continue
        try:
            answer: Any = ("ok", ident, owner.run(job, args))
        except TerminalError as exc:
            answer = ("err", ident, exc.code, exc.message, exc.call)
        except Exception as exc:
            log.exception("mt5 worker job %s failed", job)
            answer = ("fail", ident, f"{type(exc).__name__}: {exc}")
        try:
            pipe.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            log.exception("mt5 worker job %s answered what cannot cross the pipe", job)
            pipe.send(("fail", ident, f"{type(exc).__name__}: {exc}"))


def main() -> None:
    """The pipe's two ends move to private descriptors (``os.dup``'s are not inherited):
    fd 0 becomes ``/dev/null`` and fd 1 stderr, so neither a stray ``print`` nor a process
    the package starts (``initialize`` may launch the terminal) holds or writes the pipe,
    and the daemon's exit is seen as end of file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    jobs = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    with open(os.devnull, "rb") as null:
        os.dup2(null.fileno(), 0)
    os.dup2(2, 1)
    sys.stdin, sys.stdout = open(os.devnull), sys.stderr  # noqa: SIM115  (for the process's life)
    serve(jobs, answers)


if __name__ == "__main__":
    main()
