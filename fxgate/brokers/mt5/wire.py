"""The pipe between the adapter and its worker process: length-prefixed pickles.

Both ends are fxgate's own code over the child's stdin and stdout, so ``pickle`` (of
plain values only: tuples, dicts, lists, numbers, strings, datetimes) is safe and the
cheapest encoding for the results that cross, which are the whole hot path's cost in
the event loop (one ``loads`` per poll).

Frames, parent → child: ``("api", module, function, kwargs, log_level)`` once, first
(the child builds the package with ``module.function(**kwargs)``), then ``(id, job,
args)``; the job ``"forget"`` drops the package's connection. Child → parent:
``("ok", id, value)``, ``("err", id, code, message, call)`` (a
:class:`~.terminal.TerminalError`), ``("fail", id, text)`` (a bug in a job), and
``("log", logger, level, message, extra)``.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")
FORGET = "forget"


def frame(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def read(stream: BinaryIO) -> Any:
    """The next message (blocking), or ``None`` at end of file (the other end is gone)."""
    head = _exactly(stream, HEADER.size)
    if head is None:
        return None
    body = _exactly(stream, HEADER.unpack(head)[0])
    return None if body is None else pickle.loads(body)  # noqa: S301  (our own child)


def _exactly(stream: BinaryIO, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


async def read_async(reader: asyncio.StreamReader) -> Any:
    """The next message; ``asyncio.IncompleteReadError`` at end of file."""
    head = await reader.readexactly(HEADER.size)
    return pickle.loads(await reader.readexactly(HEADER.unpack(head)[0]))  # noqa: S301
