"""The Redis hop alone: publish → the node's own hub, one node, a real redis-server.

No daemon and no clients: the bus publishes market data (a plain ``PUBLISH``) and
trading events (the Lua script) at a Poisson rate and one sink per channel notes when
the hub hands it each message. With ``--busy-us`` each delivery also queues what the
frame writer would do on a loaded node: ``--chunks`` loop callbacks of that many µs one
after the other (1,000 clients flushed 64 per iteration ≈ 16 chunks), so that every
loop iteration on the hop's path costs what it costs in ``fanout.py``. The same run
goes through the local bus for comparison. Prints publish→hub p50/p99 and the CPU per
event of this process and of ``redis-server`` beyond the emulated load.

    taskset -c 0 python bench/redis_hop.py --rate 170 --seconds 5 --busy-us 250

(``taskset`` pins ``redis-server`` with the node, as ``fanout.py --bus redis`` does.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fxgate.bus.local import LocalBus
from fxgate.bus.redis import RedisBus
from fxgate.config.settings import BusSettings, Settings
from fxgate.domain.events import Event
from fxgate.domain.roles import Role
from fxgate.hub.hub import Hub
from fxgate.hub.sink import Dialect
from fxgate.plugins.channel import Channel, Filter, Filters, Principal
from fxgate.protocol.canonical import CANONICAL

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Quotes(Channel):
    name = "quotes"
    message_type = "quote"
    scope = "public"
    filters = {"symbol": Filter("symbol")}
    key_filter = "symbol"
    conflate = True

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        return []


class Orders(Channel):
    name = "orders"
    message_type = "order"
    scope = "user"
    min_role = Role.TRADER
    history_size = 1000
    history_ttl = 60.0


class TimedSink:
    def __init__(self, user: str, emulate: Any) -> None:
        self.principal = Principal(user, Role.TRADER)
        self.dialect: Dialect = CANONICAL
        self.at: list[float] = []
        self._emulate = emulate

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        self.at.append(time.perf_counter())
        self._emulate()

    def kick(self, disconnect: Any) -> None:
        raise AssertionError("never kicked")


def start_redis() -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def cpu_of(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def run(kind: str, port: int, redis_pid: int, args: argparse.Namespace) -> str:
    loop = asyncio.get_running_loop()
    busy = args.busy_us / 1e6

    def chunk(left: int) -> None:
        end = time.perf_counter() + busy
        while time.perf_counter() < end:
            pass
        if left > 1:
            loop.call_soon(chunk, left - 1)

    def emulate() -> None:
        if busy:
            loop.call_soon(chunk, args.chunks)

    settings = Settings(
        bus=BusSettings(
            backend="redis",
            redis_url=f"redis://127.0.0.1:{port}/0",
            redis_prefix=f"hop{time.monotonic_ns()}",
        )
    )
    hub = Hub([Quotes(), Orders()])
    sinks = {"quotes": TimedSink("q", emulate), "orders": TimedSink("alice", emulate)}
    for name, sink in sinks.items():
        hub.add(hub.make_subscription(sink, name, None))
    bus: RedisBus | LocalBus = RedisBus(settings, hub) if kind == "redis" else LocalBus(hub)
    await bus.start()
    sent: dict[str, list[float]] = {"quotes": [], "orders": []}
    rnd = random.Random(1)
    n = int(args.rate * args.seconds)
    cpu0, redis0 = time.process_time(), cpu_of(redis_pid)
    for i in range(n):
        if i % 10 == 0:
            event = Event("orders", {"n": i, "symbol": "EURUSD"}, user_id="alice")
        else:
            event = Event("quotes", {"symbol": "EURUSD", "bid": 1 + i / 1e6}, key="EURUSD")
        sent[event.channel].append(time.perf_counter())
        bus.publish(event)
        await asyncio.sleep(rnd.expovariate(args.rate))
    await asyncio.sleep(0.5)
    cpu = (time.process_time() - cpu0 - n * args.chunks * busy) / n * 1e6
    redis_cpu = (cpu_of(redis_pid) - redis0) / n * 1e6
    await bus.stop()
    parts = [f"{kind:5s}"]
    for name, times in sent.items():
        got = sinks[name].at
        lat = sorted((b - a) * 1e3 for a, b in zip(times, got, strict=False))
        lost = len(times) - len(got)
        parts.append(
            f"{name} p50 {lat[len(lat) // 2]:.2f} p99 {lat[int(len(lat) * 0.99)]:.2f} ms"
            + (f" ({lost} not delivered)" if lost else "")
        )
    parts.append(f"CPU/event: node {cpu:.0f} µs + redis-server {redis_cpu:.0f} µs")
    return " | ".join(parts)


async def main(args: argparse.Namespace) -> None:
    proc, port = start_redis()
    try:
        for _ in range(args.repeat):
            for kind in ("local", "redis"):
                print(await run(kind, port, proc.pid, args), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rate", type=float, default=170.0, help="events/s (default 170)")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--busy-us", type=float, default=0.0, help="µs per emulated flush chunk")
    p.add_argument("--chunks", type=int, default=16, help="emulated flush chunks per delivery")
    p.add_argument("--repeat", type=int, default=2)
    asyncio.run(main(p.parse_args()))
