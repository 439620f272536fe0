"""The per-connection writer: the hot path from the hub to the socket.

Tornado's ``write_message`` costs a frame build, a Future and a Task per call, and
``IOStream.write`` a Future and buffer bookkeeping per call, which caps a naive
broadcast far below what one core can push. Here a connection's frames (already built
once and shared by every client) are appended to a list; once per event-loop iteration
the :class:`Flusher` joins each dirty connection's list and hands it to the socket in
one ``send``. Only when the kernel buffer is full does the remainder go to the
IOStream, which then owns the socket until it has drained; meanwhile new frames wait
in a backlog where market data is conflated per symbol (latest wins) and everything
else is kept in order; frames held back during a snapshot are kept the same way.

The bound, ``ws.queue_max_bytes``, covers every byte held for the connection: what a
flush pass could not hand to the kernel (the unflushed list, counted when it is
joined), what the IOStream still holds, the backlog and the held frames. It is
checked once per flush pass and on the slow paths (blocked, held), never per frame on
the fast path. Over it, the client cannot keep up with trading events, which are never
dropped silently: it is disconnected with 4008 and recovers on reconnect. Tornado's
private write state is read only through :mod:`fxgate.web.ws.iostream`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Callable, Sized
from typing import Any

from tornado.iostream import IOStream, StreamClosedError

from fxgate.domain.errors import Disconnect, Disconnects
from fxgate.hub.sink import Dialect
from fxgate.plugins.channel import Principal
from fxgate.web.ws.framing import text_frame
from fxgate.web.ws.iostream import buffered_bytes, pending_writes, raw_socket

log = logging.getLogger(__name__)

_seq = itertools.count()


#: Writers flushed per loop iteration. A pass over thousands of sockets yields to the
#: loop between chunks, so a tick that comes due mid-pass is published at once: writers
#: not reached yet then carry both ticks in one ``send``, and the new tick's first
#: receivers do not wait for the whole pass. 64 measured better than 256 and than one
#: callback per pass, at 1,000 and 5,000 clients (bench/README.md).
CHUNK = 64
#: Writers per iteration while ``expecting`` says input is on its way (the Redis bus's
#: own events coming back): a chunk of 64 sends takes 0.3-0.6 ms, longer than Redis
#: takes to answer, and the message would wait for the rest of it.
CHUNK_EXPECTING = 16


class Flusher:
    """Flushes dirty writers, ``CHUNK`` per loop iteration, each once per pass.

    Writers append themselves to ``dirty`` directly and call :meth:`schedule` only when
    ``scheduled`` is False: the per-frame cost is a list append, not a method call.
    ``expecting``, asked once per chunk, says whether the loop should look at its
    sockets sooner than a full chunk allows (``Bus.expecting``).
    """

    __slots__ = ("_expecting", "_loop", "dirty", "scheduled", "writes")

    def __init__(self, expecting: Callable[[], bool] | None = None) -> None:
        self.dirty: list[FrameWriter] = []
        self.scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expecting = expecting
        self.writes = 0

    def schedule(self) -> None:
        self.scheduled = True
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._loop.call_soon(self.flush)

    def flush(self) -> None:
        dirty = self.dirty
        expecting = self._expecting
        size = CHUNK_EXPECTING if expecting is not None and expecting() else CHUNK
        if len(dirty) > size:
            batch, self.dirty = dirty[:size], dirty[size:]
            loop = self._loop
            assert loop is not None
            # Still scheduled: the rest comes next, as a timer due now rather than with
            # call_soon, because asyncio runs the due timers of an iteration after its
            # I/O callbacks: what a socket brought meanwhile (the Redis bus's messages, a
            # client's frame) and a tick's wake-up go ahead of the next chunk instead of
            # waiting behind it.
            loop.call_at(loop.time(), self.flush)
        else:
            batch, self.dirty = dirty, []
            self.scheduled = False
        for writer in batch:
            writer.flush()
        self.writes += len(batch)


class FrameWriter:
    """Queues frames for one connection and writes them without a Future per frame.

    It is also the connection as the hub and the session see it (``principal``,
    ``dialect``, ``kick``, ``send``), so the hot path is one method call per client.
    """

    __slots__ = (
        "_backlog",
        "_backlog_bytes",
        "_blocked",
        "_buf",
        "_dirty",
        "_fast",
        "_flusher",
        "_held",
        "_held_bytes",
        "_on_kick",
        "_pending",
        "_room",
        "_sock",
        "_stream",
        "closed",
        "dialect",
        "max_bytes",
        "principal",
    )

    def __init__(
        self,
        stream: IOStream,
        flusher: Flusher,
        *,
        max_bytes: int,
        kick: Callable[[Disconnect], Any],
        principal: Principal,
        dialect: Dialect,
    ) -> None:
        self.principal = principal
        self.dialect = dialect
        self._stream = stream
        self._sock: socket.socket = raw_socket(stream)
        self._pending: Sized = pending_writes(stream)
        self._flusher = flusher
        self._buf: list[bytes] = []
        self._dirty = False
        self._blocked = False
        self._backlog: dict[object, bytes] = {}
        self._backlog_bytes = 0
        self._held: dict[object, bytes] | None = None
        self._held_bytes = 0
        self._on_kick = kick
        self.max_bytes = max_bytes
        #: What the backlog and the held frames may take before the stream's buffer is
        #: read again: ``max_bytes`` less what the stream held when last looked at.
        self._room = max_bytes
        self.closed = False
        #: Not held, not blocked, not closed: deliver() may append and return.
        self._fast = True

    # -- input -----------------------------------------------------------------

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        """A live message from the hub (held back while a snapshot is being sent).

        The hot path: one call per message and connection, so the common case (not
        held, not blocked) is inlined here rather than delegated.
        """
        if self._fast:
            self._buf.append(frame)
            if not self._dirty:
                self._dirty = True
                flusher = self._flusher
                flusher.dirty.append(self)
                if not flusher.scheduled:
                    flusher.schedule()
            return
        held = self._held
        if held is not None:
            # Held like the backlog: market data conflated (latest per symbol wins),
            # everything else kept in order, all of it counted against the bound.
            if conflate_key is not None:
                old = held.pop(conflate_key, None)
                if old is not None:
                    self._held_bytes -= len(old)
            else:
                conflate_key = next(_seq)
            held[conflate_key] = frame
            self._held_bytes += len(frame)
            if self._held_bytes + self._backlog_bytes > self._room:
                self._check_bound()
            return
        self.control(frame, conflate_key)

    def send(self, payload: bytes) -> None:
        """A reply from the session (payload bytes): framed here, sent ahead of anything
        held. Replies are per client, so framing them here adds nothing shared."""
        self.control(text_frame(payload))

    def control(self, frame: bytes, conflate_key: object | None = None) -> None:
        """A frame to send in order, ahead of anything held."""
        if self.closed:
            return
        if self._blocked:
            backlog = self._backlog
            if conflate_key is not None:
                old = backlog.pop(conflate_key, None)
                if old is not None:
                    self._backlog_bytes -= len(old)
            else:
                conflate_key = next(_seq)
            backlog[conflate_key] = frame
            self._backlog_bytes += len(frame)
            if self._backlog_bytes + self._held_bytes > self._room:
                self._check_bound()
            return
        self._buf.append(frame)
        if not self._dirty:
            self._dirty = True
            flusher = self._flusher
            flusher.dirty.append(self)
            if not flusher.scheduled:
                flusher.schedule()

    def _update_fast(self) -> None:
        self._fast = self._held is None and not self._blocked and not self.closed

    def hold(self) -> None:
        if self._held is None:
            self._held = {}
            self._held_bytes = 0
            self._fast = False

    def release(self) -> None:
        held, self._held = self._held, None
        self._held_bytes = 0
        self._update_fast()
        for key, frame in (held or {}).items():
            self.control(frame, key)

    # -- output ----------------------------------------------------------------

    def flush(self) -> None:
        self._dirty = False
        buf = self._buf
        if not buf or self.closed:
            buf.clear()
            return
        data = buf[0] if len(buf) == 1 else b"".join(buf)
        buf.clear()
        # Tornado's own frames (pings, close) may still sit in the stream's buffer: ours
        # must queue behind them. The queue is non-empty exactly while a stream write is
        # pending, and testing it is cheaper than ``writing()``.
        if self._pending:
            self._write_via_stream(data)
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            # Closed or reset (a closed socket raises here too); Tornado notices on its
            # next read and runs on_close.
            self.close()
            return
        if sent < len(data):
            self._write_via_stream(memoryview(data)[sent:])

    def _write_via_stream(self, data: bytes | memoryview) -> None:
        # The slow path, once per flush pass at most: what the kernel did not take
        # stays with us, so it counts against the bound with what the stream holds.
        held = buffered_bytes(self._stream) + len(data)
        if held + self._backlog_bytes + self._held_bytes > self.max_bytes:
            self._overflow()
            return
        self._room = self.max_bytes - held
        self._blocked = True
        self._fast = False
        try:
            fut = self._stream.write(data)
        except StreamClosedError:
            self.close()
            return
        fut.add_done_callback(self._drained)

    def _check_bound(self) -> None:
        """The backlog and held frames passed the room left when the stream was last
        looked at: look again (it may have drained), and kick if still over."""
        stream_held = buffered_bytes(self._stream) if self._blocked else 0
        self._room = self.max_bytes - stream_held
        if self._backlog_bytes + self._held_bytes > self._room:
            self._overflow()

    def _drained(self, fut: asyncio.Future[None]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.close()
            return
        self._blocked = False
        self._room = self.max_bytes
        self._update_fast()
        backlog, self._backlog = self._backlog, {}
        self._backlog_bytes = 0
        if backlog and not self.closed:
            self._buf.extend(backlog.values())
            if not self._dirty:
                self._dirty = True
                self._flusher.dirty.append(self)
                if not self._flusher.scheduled:
                    self._flusher.schedule()

    def flush_for_ping(self) -> bool:
        """Hand what is queued to the socket now, as a ping is about to be written
        behind it (``fxgate.hub.acks``); whether every frame delivered so far is then
        ahead of the ping: none held back during a snapshot, none in the backlog that
        waits for the stream to drain. Once per ping interval, off the hot path."""
        self.flush()
        return not self.closed and self._held is None and not self._backlog

    def flush_all_now(self) -> None:
        """Push everything queued into the stream (before a close frame)."""
        if self.closed:
            return
        self._buf.extend((self._held or {}).values())
        self._held = None
        self._held_bytes = 0
        self._buf.extend(self._backlog.values())
        self._backlog.clear()
        self._backlog_bytes = 0
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            try:
                self._stream.write(data)
            except StreamClosedError:
                self.close()

    def _overflow(self) -> None:
        log.warning(
            "slow consumer disconnected",
            extra={"backlog": self._backlog_bytes + self._held_bytes},
        )
        self.close()
        self._on_kick(Disconnects.SLOW_CONSUMER)

    def kick(self, disconnect: Disconnect) -> None:
        self._on_kick(disconnect)

    def close(self) -> None:
        self.closed = True
        self._fast = False
        self._buf.clear()
        self._backlog.clear()
        self._backlog_bytes = 0
        self._held = None
        self._held_bytes = 0

    @property
    def backlog_bytes(self) -> int:
        """Bytes queued here and not yet handed to the stream (backlog and held)."""
        return self._backlog_bytes + self._held_bytes
