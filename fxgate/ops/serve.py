"""``fxgate serve``: start the node and the HTTP server, stop both gracefully.

On SIGTERM/SIGINT the daemon stops taking connections, tells every client
``{"type":"system","data":{"status":"RESTARTING"}}``, closes them with 1001, gives
them ``server.shutdown_grace`` seconds to go, stops its tasks and closes the store, and
exits 0.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from fxgate.app.assembly import build_node
from fxgate.config.settings import Settings
from fxgate.domain.errors import Disconnects
from fxgate.domain.timefmt import iso_ms
from fxgate.node import Node
from fxgate.ops import systemd
from fxgate.ops.demo import ensure_demo_trader
from fxgate.ops.workers import StatusPipe
from fxgate.protocol.canonical import encode
from fxgate.web.app import make_app
from fxgate.web.server import listen, make_server

log = logging.getLogger("fxgate")


def restarting_payload() -> bytes:
    now = iso_ms()
    return encode(
        {
            "type": "system",
            "channel": "system",
            "data": {
                "status": "RESTARTING",
                "message": "Server restarting; reconnect shortly",
                "timestamp": now,
            },
            "timestamp": now,
            "id": f"msg_restart_{time.time_ns()}",
        }
    )


async def close_clients(node: Node, grace: float) -> None:
    notice = restarting_payload()
    for session in list(node.sessions):
        # Each dialect tells its clients in its own format (seed 001's by default).
        session.disconnect(Disconnects.SHUTDOWN, notice=session.shutdown_notice(notice))
    deadline = time.monotonic() + grace
    while node.sessions and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a set
        await asyncio.sleep(0.05)


async def serve(
    settings: Settings,
    *,
    ready_callback: Any = None,
    demo: bool = False,
    listen_fd: int | None = None,
    status: StatusPipe | None = None,
) -> int:
    """One process serving: alone, or as a worker of :mod:`fxgate.ops.workers` (then
    ``listen_fd`` is the supervisor's bound socket and ``status`` its pipe, and the
    supervisor, not this process, speaks to systemd)."""
    # Built (settings checked) but not started: nothing on disk yet. Then the port,
    # then the state, so that a port in use leaves no master key or signing key.
    node = build_node(settings)
    if listen_fd is None:
        sockets = listen(settings)
    else:
        inherited = socket.socket(fileno=listen_fd)
        inherited.setblocking(False)
        sockets = [inherited]
    try:
        await node.start()
        if demo:
            await ensure_demo_trader(node)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    app = make_app(node)
    server = make_server(app, settings.server)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]

    stop = asyncio.Event()
    on_signals(asyncio.get_running_loop(), stop.set)

    # A thread that holds the GIL (the SQLite store's worker decoding rows, the MT5
    # adapter's thread worker) hands it back to the loop within this, not Python's 5 ms.
    sys.setswitchinterval(settings.server.switch_interval)
    if settings.server.gc_freeze:
        # Everything built so far lives as long as the process: move it out of the
        # collector's sight, and collect the young generation less often, so that
        # thousands of connections don't mean GC pauses on the hot path.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)

    log.info(
        "fxgate ready",
        extra={
            "port": port,
            "host": settings.server.host,
            "state_dir": str(settings.state_dir.resolve()),
            "store": settings.store.backend,
            "broker": settings.broker.backend,
            "bus": settings.bus.backend,
        },
    )
    log.info(
        "get a token with: FXGATE_STATE_DIR=%s fxgate token issue --user demo; "
        "then connect to ws://%s:%d/api/ws?token=<token>",
        settings.state_dir,
        "localhost" if settings.server.host in ("0.0.0.0", "") else settings.server.host,
        port,
    )
    if status is not None:
        status.send(b"R")
        node.spawn(status.beat(), name="worker-heartbeat")
    else:
        systemd.notify(f"READY=1\nSTATUS=serving on port {port}\nMAINPID={os.getpid()}")
        watchdog = systemd.watchdog_interval()
        if watchdog:
            node.spawn(_watchdog(watchdog), name="watchdog")
    if ready_callback is not None:
        ready_callback(port)

    await stop.wait()
    log.info("shutting down", extra={"connections": len(node.sessions)})
    if status is None:
        systemd.notify("STOPPING=1")
    node.announce_stopping()
    node.stopping = True
    # Clients are told first and the listening socket closed after: a polling client
    # (Socket.IO) may need a new TCP connection to fetch its notice. New connections
    # meanwhile are refused by the handlers (node.stopping), with a status.
    await close_clients(node, settings.server.shutdown_grace)
    server.stop()
    await node.stop()
    await server.close_all_connections()
    log.info("stopped")
    return 0


def on_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """Stop on SIGTERM and SIGINT. Windows' event loops have no ``add_signal_handler``
    (an MT5 terminal runs there): the plain handler then hands the stop to the loop."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop)
        except NotImplementedError:
            signal.signal(sig, lambda _signum, _frame: loop.call_soon_threadsafe(stop))


async def _watchdog(interval: float) -> None:
    while True:
        systemd.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def run(
    settings: Settings,
    *,
    demo: bool = False,
    listen_fd: int | None = None,
    status_fd: int | None = None,
) -> int:
    # A watchdog kill (SIGABRT) or a hang then leaves the stuck stack in the journal.
    faulthandler.enable()
    status = StatusPipe(status_fd) if status_fd is not None else None
    return asyncio.run(serve(settings, demo=demo, listen_fd=listen_fd, status=status))
