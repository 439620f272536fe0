"""The package as the terminal's one owner sees it, and the worker port the adapter uses.

The MetaTrader5 package has no push API, is not documented as thread safe, keeps
``last_error()`` as process-wide state, and blocks on a named pipe (or, through
``mt5linux``, a TCP round trip). So every call runs in one worker that owns the
terminal, off the event loop, and a call's failure is read from ``last_error()`` there,
at once. Results leave the worker as plain Python values (``_asdict()`` dicts, lists,
numpy rows as dicts), so nothing above this module sees an MT5 type or an RPyC proxy.

The worker is a child process by default (:mod:`.process`, whose child is
:mod:`.worker`): the package's calls, the fake's or mt5linux's Python and the
conversion to plain values would otherwise hold the event loop's GIL (bench/README.md,
"MT5"). A thread (:mod:`.thread`) remains for in-process tests and ``mt5.worker =
"thread"``. Both run the same named jobs (:mod:`.jobs`). Only this module imports
``MetaTrader5`` or ``mt5linux`` (in the worker).
"""

from __future__ import annotations

import importlib
import socket
from typing import Any, Protocol
from urllib.parse import urlsplit

#: ``last_error()`` codes of the package's IPC layer (MT5.md): the terminal is not
#: running (-10004 no connection), too slow (-10005 timeout), or the pipe broke.
IPC_ERRORS = frozenset(range(-10005, -9999))
#: Our own code for an exception from the bridge or the package (connection lost).
BRIDGE_LOST = -20000
#: Our own code for a worker process that exited (or could not start): the terminal is
#: lost with it, and the next call starts a new one.
WORKER_LOST = -20001
NOT_LOGGED_IN = -6
AUTO_TRADING_DISABLED = -8


class TerminalError(Exception):
    """A call returned ``None``/``False``; ``code``/``message`` are ``last_error()``'s."""

    def __init__(self, code: int, message: str, call: str) -> None:
        super().__init__(f"{call}: {message} ({code})")
        self.code = code
        self.message = message
        self.call = call

    @property
    def lost(self) -> bool:
        """The terminal (or the bridge to it) is gone, rather than the request bad."""
        return self.code in IPC_ERRORS or self.code in (BRIDGE_LOST, WORKER_LOST, NOT_LOGGED_IN)


def parse_bridge(url: str) -> tuple[str, int]:
    """``mt5linux://host:port`` → ``(host, port)``; ``ValueError`` names what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "mt5linux" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError("must look like mt5linux://127.0.0.1:18812")
    return parts.hostname, parts.port or 18812


def bridge_reachable(url: str, timeout: float = 2.0) -> str | None:
    """Why the bridge cannot be reached, or ``None`` when a TCP connection opens."""
    host, port = parse_bridge(url)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc.strerror or exc})"
    return None


def import_api(bridge: str) -> Any:
    """The MetaTrader5 module, or the ``mt5linux`` client that mirrors it."""
    if not bridge:
        return importlib.import_module("MetaTrader5")
    host, port = parse_bridge(bridge)
    module = importlib.import_module("mt5linux")
    return module.MetaTrader5(host=host, port=port)


def plain(value: Any) -> Any:
    """An MT5 result as plain values: records to dicts, tuples to lists, numpy rows to
    dicts (numpy scalars to Python numbers)."""
    asdict = getattr(value, "_asdict", None)
    if asdict is not None:
        return {k: plain(v) for k, v in dict(asdict()).items()}
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(dtype, "names", None):
        names = dtype.names
        return [dict(zip(names, row, strict=True)) for row in value.tolist()]
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, str | bytes | int | float | bool):
        return item()
    return value


class Calls:
    """The package as seen from inside the worker (never from the event loop)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``name``; ``None``/``False`` raises :class:`TerminalError` with
        ``last_error()``, read at once because the next call overwrites it."""
        try:
            result = getattr(self.api, name)(*args, **kwargs)
        except TerminalError:
            raise
        except Exception as exc:  # the bridge's EOFError, ConnectionError, RPyC errors
            raise TerminalError(BRIDGE_LOST, f"{type(exc).__name__}: {exc}", name) from None
        if result is None or result is False:
            code, message = self.last_error()
            if code == 1:  # "success": a None that is an answer (nothing found)
                code = -4
            raise TerminalError(code, message, name)
        return plain(result)

    def last_error(self) -> tuple[int, str]:
        try:
            code, message = self.api.last_error()
        except Exception as exc:
            return BRIDGE_LOST, f"{type(exc).__name__}: {exc}"
        return int(code), str(message)


class Worker(Protocol):
    """The terminal's one owner, as the adapter sees it: ``await worker.run("read_state",
    since)`` runs the job of that name (:data:`.jobs.JOBS`) there and answers its plain
    result, or raises :class:`TerminalError`.

    A job groups the calls of one step (a whole poll), so a step costs one hop to the
    worker, not one per call. Jobs run one at a time, in the order they were asked for.
    """

    async def run(self, job: str, *args: Any) -> Any: ...

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """One package call (the ``call`` job)."""
        ...

    def forget(self) -> None:
        """Drop the connection to the terminal (the bridge's, the package's handle) so
        that the next call makes a new one, after whatever call is running."""

    async def close(self) -> None:
        """Stop the worker (the process ends; no orphan)."""
