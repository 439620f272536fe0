"""Seed 002's own stack, for ``bench/fanout.py --reference``: the issue compares fxgate's
``/socket.io/`` with the Flask-SocketIO backend it replaces, so that backend is measured
here with the same load generator, on the same machine, in the same run.

The server is the seed's "complete backend example" with its feed standing in for
``get_mt5_quotes()``: a background task emits one ``quotes`` event per tick to the room
``quotes`` (``socketio.emit('quotes', quote, room='quotes')``, as the seed does), with the
seed's payload ``{symbol, bid, ask, spread, timestamp}`` (``timestamp`` as the seed's
``datetime.utcnow().isoformat()``, taken when the tick was due, so a feed that falls
behind shows as latency). Ticks are evenly spaced, ``--tick-rate`` per symbol per second,
round-robin over the symbols. ``connect`` refuses a missing token (from ``auth`` or
``?token=``), ``subscribe`` joins the rooms and answers ``subscribed``, as in the seed.

Stacks (``--stack``):

- ``flask-threading``: Flask-SocketIO, ``async_mode="threading"`` on Werkzeug with
  simple-websocket (what ``socketio.run(app)`` gives the seed without eventlet or gevent);
- ``flask-gevent``: Flask-SocketIO, ``async_mode="gevent"`` (gevent's WSGI server,
  monkey-patched);
- ``python-socketio``: python-socketio's ``AsyncServer`` on Tornado, the library fxgate's
  endpoint builds on, with its per-recipient ``emit`` (what fxgate would be without its
  own fan-out).

Flask-SocketIO and gevent come from the ``bench`` extra: ``pip install -e '.[bench]'``.

    python bench/seed002_reference.py --stack flask-threading --port 9090 --tick-rate 17
    python bench/fanout.py --clients 1000 --reference flask-socketio,flask-socketio-gevent
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

STACKS = ("flask-threading", "flask-gevent", "python-socketio")
SYMBOLS = "EURUSD,GBPUSD,USDJPY,USDCHF,AUDUSD,USDCAD,NZDUSD,EURGBP,EURJPY,XAUUSD"
PRICES = {"USDJPY": 150.0, "EURJPY": 162.0, "XAUUSD": 2050.0}
CONNECTED = "Connected to MT5 Trading Dashboard"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    # "serve": bench/fxdaemon.py starts servers as ``CMD serve --host H --port P``.
    p.add_argument("command", nargs="?", choices=["serve"], default="serve")
    p.add_argument("--stack", choices=STACKS, default="flask-threading")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9090)
    p.add_argument("--tick-rate", type=float, default=17.0, help="ticks/s per symbol")
    p.add_argument(
        "--symbols", default=SYMBOLS, type=lambda s: [x.strip() for x in s.split(",") if x.strip()]
    )
    p.add_argument("--ping-interval", type=float, default=25.0, help="Engine.IO pingInterval, s")
    p.add_argument("--ping-timeout", type=float, default=20.0, help="Engine.IO pingTimeout, s")
    p.add_argument(
        "--timestamps",
        choices=["iso", "seconds", "millis"],
        default="iso",
        help="test aid: the quotes' timestamp as the seed's ISO string or an epoch number",
    )
    p.add_argument(
        "--skip-first-every",
        type=int,
        default=0,
        help="test aid: the first client to connect misses every K-th tick (loss accounting)",
    )
    return p.parse_args(argv)


def ticks(
    symbols: list[str], rate: float, timestamps: str = "iso"
) -> Iterator[tuple[float, dict[str, Any]]]:
    """(due time on the monotonic clock, payload) for evenly spaced ticks, forever."""
    interval = 1.0 / (rate * len(symbols))
    mono0, wall0 = time.monotonic(), time.time()
    bids = {s: PRICES.get(s, 1.1) for s in symbols}
    n = 0
    while True:
        symbol = symbols[n % len(symbols)]
        due = mono0 + n * interval
        point = 0.001 if bids[symbol] > 100 else 0.00001
        bids[symbol] += point * (1 if (n * 7919) % 3 else -1)
        bid = round(bids[symbol], 5)
        ask = round(bid + 12 * point, 5)
        wall = wall0 + (due - mono0)
        stamp: str | float = datetime.fromtimestamp(wall, UTC).replace(tzinfo=None).isoformat()
        if timestamps == "seconds":
            stamp = round(wall, 6)
        elif timestamps == "millis":
            stamp = round(wall * 1000.0, 3)
        yield (
            due,
            {
                "symbol": symbol,
                "bid": bid,
                "ask": ask,
                "spread": round((ask - bid) / point),
                "timestamp": stamp,
            },
        )
        n += 1


class FirstClient:
    """Whom ``--skip-first-every`` starves: the first sid that subscribed."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.sid: str | None = None
        self.count = 0

    def skip(self) -> str | None:
        self.count += 1
        if self.every and self.sid is not None and self.count % self.every == 0:
            return self.sid
        return None


def token_of(auth: Any, query_token: str | None) -> str | None:
    if isinstance(auth, dict) and auth.get("token"):
        return str(auth["token"])
    return query_token or None


def run_flask(args: argparse.Namespace) -> None:
    if args.stack == "flask-gevent":
        from gevent import monkey

        monkey.patch_all()
    from flask import Flask, request
    from flask_socketio import SocketIO, emit, join_room, leave_room

    app = Flask(__name__)
    mode = "gevent" if args.stack == "flask-gevent" else "threading"
    socketio = SocketIO(
        app,
        async_mode=mode,
        cors_allowed_origins="*",
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        logger=False,
        engineio_logger=False,
    )
    first = FirstClient(args.skip_first_every)

    @app.route("/health")
    def health() -> str:
        return "ok"

    @socketio.on("connect")
    def handle_connect(auth: Any = None) -> bool:
        if not token_of(auth, request.args.get("token")):
            return False
        emit("connected", {"message": CONNECTED, "server_time": time.time()})
        return True

    @socketio.on("subscribe")
    def handle_subscribe(data: Any) -> None:
        channels = data.get("channels", []) if isinstance(data, dict) else []
        for channel in channels:
            join_room(channel)
        if first.sid is None:
            first.sid = request.sid  # type: ignore[attr-defined]
        emit("subscribed", {"channels": channels})

    @socketio.on("unsubscribe")
    def handle_unsubscribe(data: Any) -> None:
        channels = data.get("channels", []) if isinstance(data, dict) else []
        for channel in channels:
            leave_room(channel)
        emit("unsubscribed", {"channels": channels})

    @socketio.on("heartbeat")
    def handle_heartbeat(data: Any) -> None:
        emit("heartbeat_ack", {"timestamp": time.time()})

    def quote_broadcaster() -> None:
        for due, quote in ticks(args.symbols, args.tick_rate, args.timestamps):
            wait = due - time.monotonic()
            if wait > 0:
                socketio.sleep(wait)
            socketio.emit("quotes", quote, to="quotes", skip_sid=first.skip())

    socketio.start_background_task(quote_broadcaster)
    print(f"seed002_reference: {args.stack} on {args.host}:{args.port}", flush=True)
    socketio.run(app, host=args.host, port=args.port, log_output=False, allow_unsafe_werkzeug=True)


def run_python_socketio(args: argparse.Namespace) -> None:
    import asyncio

    import socketio
    import tornado.web

    sio = socketio.AsyncServer(
        async_mode="tornado",
        cors_allowed_origins="*",
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        logger=False,
        engineio_logger=False,
    )
    first = FirstClient(args.skip_first_every)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        query = dict(
            part.split("=", 1) for part in environ.get("QUERY_STRING", "").split("&") if "=" in part
        )
        if not token_of(auth, query.get("token")):
            return False
        await sio.emit(
            "connected",
            {"message": CONNECTED, "server_time": time.time()},
            to=sid,
        )
        return True

    @sio.event
    async def subscribe(sid: str, data: Any) -> None:
        channels = data.get("channels", []) if isinstance(data, dict) else []
        for channel in channels:
            await sio.enter_room(sid, channel)
        if first.sid is None:
            first.sid = sid
        await sio.emit("subscribed", {"channels": channels}, to=sid)

    @sio.event
    async def unsubscribe(sid: str, data: Any) -> None:
        channels = data.get("channels", []) if isinstance(data, dict) else []
        for channel in channels:
            await sio.leave_room(sid, channel)
        await sio.emit("unsubscribed", {"channels": channels}, to=sid)

    @sio.event
    async def heartbeat(sid: str, data: Any) -> None:
        await sio.emit("heartbeat_ack", {"timestamp": time.time()}, to=sid)

    class Health(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("ok")

    async def quote_broadcaster() -> None:
        for due, quote in ticks(args.symbols, args.tick_rate, args.timestamps):
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await sio.emit("quotes", quote, room="quotes", skip_sid=first.skip())

    async def main() -> None:
        app = tornado.web.Application(
            [(r"/health", Health), (r"/socket.io/", socketio.get_tornado_handler(sio))]
        )
        app.listen(args.port, address=args.host)
        print(f"seed002_reference: {args.stack} on {args.host}:{args.port}", flush=True)
        task = asyncio.create_task(quote_broadcaster())
        await asyncio.Event().wait()
        task.cancel()

    asyncio.run(main())


RUNNERS: dict[str, Callable[[argparse.Namespace], None]] = {
    "flask-threading": run_flask,
    "flask-gevent": run_flask,
    "python-socketio": run_python_socketio,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        RUNNERS[args.stack](args)
    except ImportError as exc:
        print(f"seed002_reference: {exc}: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
