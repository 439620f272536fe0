"""``fanout.py --bus redis --workers N``: the fan-out through Redis and worker processes.

For each client count it runs the same load once per (bus, workers) pair, local bus
first, in one invocation, so the rows compare on the same machine state: the latency the
Redis hop adds is the redis row's p50/p99 less the local row's, and the CPU per
delivered message is summed over every process that does the work (the supervisor, every
worker, and ``redis-server``, which this module starts on a free loopback port with
persistence off). See ``bench/README.md`` ("Redis bus and workers") for the method.

    python bench/fanout.py --clients 1000,5000 --bus local,redis --workers 1,2
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Processes whose CPU counts besides the daemon's process tree (redis-server).
EXTRA_CPU_PIDS: list[int] = []


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bus",
        default=["local"],
        type=lambda s: [x for x in s.split(",") if x],
        help="comma-separated buses to compare: local, redis (default local)",
    )
    p.add_argument(
        "--workers",
        default=[1],
        type=lambda s: [int(x) for x in s.split(",") if x],
        help="comma-separated worker counts (serve --workers; more than 1 needs redis)",
    )
    p.add_argument(
        "--redis-core",
        type=int,
        default=1,
        help="the core redis-server is pinned to (default 1, the load generator's: the"
        " daemon keeps core 0 to itself, as with the local bus; latency is timed at the"
        " bytes' arrival, so the load generator sharing its core does not inflate it)",
    )


def wanted(args: argparse.Namespace) -> bool:
    return list(args.bus) != ["local"] or list(args.workers) != [1]


def tree_cpu_secs(pid: int, cpu_of: Any) -> float:
    """CPU seconds of ``pid``, its children (the workers) and ``EXTRA_CPU_PIDS``."""
    total = 0.0
    for p in [pid, *children(pid), *EXTRA_CPU_PIDS]:
        with contextlib.suppress(OSError, ValueError):
            total += cpu_of(p)
    return total


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(x) for x in path.read_text().split()]
    except OSError:
        return []


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def start_redis(pin: list[str]) -> Redis:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [*pin, binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "no"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as c:
            c.sendall(b"PING\r\n")
            if c.recv(16).startswith(b"+PONG"):
                return Redis(port, proc)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def variant(args: argparse.Namespace, bus: str, workers: int, redis: Redis | None) -> Any:
    """``args`` for one (bus, workers) run: the daemon's settings as --env items."""
    one = copy.copy(args)
    env = list(args.env)
    if bus == "redis":
        assert redis is not None
        env += ["FXGATE_BUS_BACKEND=redis", f"FXGATE_BUS_REDIS_URL={redis.url}"]
        env += [f"FXGATE_BUS_REDIS_PREFIX=bench{time.monotonic_ns()}"]
    env += [f"FXGATE_SERVER_WORKERS={workers}"]
    one.env = env
    return one


def run_matrix(args: argparse.Namespace, pinned: bool, run_once: Any, pin: Any) -> list[Any]:
    """Every client count x bus x workers; each run's CPU summed over its processes.

    With more than one worker the daemon is not pinned to one core (its workers would
    share it): on two cores it then shares them with the load generator, which is why
    the README compares CPU per delivered message rather than raw rates."""
    redis = start_redis(pin(args.redis_core, pinned)) if "redis" in args.bus else None
    if redis is not None:
        EXTRA_CPU_PIDS.append(redis.proc.pid)
    runs: list[Any] = []
    try:
        for clients in args.clients:
            for bus in args.bus:
                for workers in args.workers:
                    if workers > 1 and bus != "redis":
                        continue
                    rate = args.tick_rate or _default_rate(clients, len(args.symbols))
                    one = variant(args, bus, workers, redis)
                    print(f"\n== bus={bus} workers={workers}", file=sys.stderr)
                    run = run_once(one, clients, rate, pinned and workers == 1)
                    run.bus, run.workers = bus, workers
                    runs.append(run)
    finally:
        if redis is not None:
            redis.stop()
            EXTRA_CPU_PIDS.clear()
    return runs


def _default_rate(clients: int, nsym: int) -> float:
    from fanout import default_tick_rate

    return float(default_tick_rate(clients, nsym))


COMPARE_HEADER = (
    "| N | bus | workers | delivered msgs/s | p50 ms | p99 ms | CPU % (all processes) "
    "| CPU µs per delivered msg | hop p50 ms | hop p99 ms |"
)


def print_comparison(runs: list[Any]) -> None:
    """Per N: each run's CPU per delivered message, and the hop against the local row."""
    print()
    print(COMPARE_HEADER)
    print("|" + "---|" * COMPARE_HEADER.count(" | ") + "---|")
    local = {r.clients: r for r in runs if r.bus == "local" and r.workers == 1}
    for r in runs:
        lg = r.loadgen
        rate = lg.get("msgs_per_sec", 0) or 1
        per_msg = r.server_cpu_pct / 100 / rate * 1e6
        base = local.get(r.clients)
        hop50 = hop99 = "-"
        if base is not None and base is not r:
            hop50 = f"{lg['p50_ms'] - base.loadgen['p50_ms']:+.2f}"
            hop99 = f"{lg['p99_ms'] - base.loadgen['p99_ms']:+.2f}"
        print(
            f"| {r.clients:,} | {r.bus} | {r.workers} | {lg.get('msgs_per_sec', 0):,.0f} "
            f"| {lg.get('p50_ms', 0):.2f} | {lg.get('p99_ms', 0):.2f} | {r.server_cpu_pct:.0f} "
            f"| {per_msg:.2f} | {hop50} | {hop99} |"
        )
