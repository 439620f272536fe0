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
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
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
    p.add_argument(
        "--workers-one-core",
        action="store_true",
        help="pin every worker to the daemon's core (0) too: their CPU per message then"
        " excludes contending with the load generator and Redis for the two cores, which a"
        " core per worker would not either (the scaling reading; see print_comparison)",
    )
    p.add_argument(
        "--no-redis-rt",
        dest="redis_rt",
        action="store_false",
        help="run redis-server at ordinary priority (default: SCHED_FIFO where allowed, so"
        " that sharing the load generator's core does not delay what it relays)",
    )


def wanted(args: argparse.Namespace) -> bool:
    return list(args.bus) != ["local"] or list(args.workers) != [1]


def tree_cpu_secs(pid: int, cpu_of: Any, *, extra: bool = True) -> float:
    """CPU seconds of ``pid``, its children (the workers) and (``extra``) ``EXTRA_CPU_PIDS``."""
    total = 0.0
    for p in [pid, *children(pid), *(EXTRA_CPU_PIDS if extra else [])]:
        with contextlib.suppress(OSError, ValueError):
            total += cpu_of(p)
    return total


_HOP_BUCKET = re.compile(r'^fxgate_bus_hop_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


def scrape_hop(port: int) -> list[tuple[float, float]] | None:
    """The daemon's ``fxgate_bus_hop_seconds`` buckets, (upper bound s, cumulative count);
    None without the Redis bus (or when ``/metrics`` does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    found = [(float(le), float(n)) for le, n in _HOP_BUCKET.findall(text)]
    return sorted(found) or None


def hop_over(
    start: list[tuple[float, float]] | None, end: list[tuple[float, float]] | None
) -> dict[str, float]:
    """p50/p99 of the hop over the window (linear within a bucket, as Prometheus's
    ``histogram_quantile``) and the share of events under 1 ms and under 3 ms."""
    if not start or not end or len(start) != len(end):
        return {}
    counts = [(le, n1 - n0) for (le, n0), (_, n1) in zip(start, end, strict=True)]
    total = counts[-1][1]
    if total <= 0:
        return {}

    def quantile(q: float) -> float:
        rank, lower, below = q * total, 0.0, 0.0
        for le, n in counts:
            if n >= rank:
                if le == float("inf"):
                    return lower
                return lower + (le - lower) * (rank - below) / max(n - below, 1e-12)
            lower, below = le, n
        return lower

    share = {le: n / total for le, n in counts}
    return {
        "events": total,
        "p50_ms": 1000 * quantile(0.50),
        "p99_ms": 1000 * quantile(0.99),
        "under_1ms": share.get(0.001, 0.0),
        "under_3ms": share.get(0.003, 0.0),
    }


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


def realtime(enabled: bool) -> list[str]:
    """``chrt -f 1`` (SCHED_FIFO) when asked and allowed: redis-server shares the load
    generator's core, and at ordinary priority each message it must relay waits for the
    load generator's time slice to end (a millisecond or more when that core is busy).
    On a VPS Redis has a core or a host of its own and answers at once; real-time
    priority gives it that here, at a few % of the core. ``--no-redis-rt`` turns it off."""
    chrt = shutil.which("chrt")
    if not enabled or chrt is None:
        return []
    try:
        subprocess.run([chrt, "-f", "1", "true"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return []  # not permitted (no CAP_SYS_NICE): ordinary priority
    return [chrt, "-f", "1"]


def start_redis(pin: list[str], rt: bool = True) -> Redis:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [*realtime(rt), *pin, binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
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
    share it) unless ``--workers-one-core``: on two cores it then shares them with the
    load generator, which is why the README compares CPU per delivered message rather
    than raw rates."""
    redis = (
        start_redis(pin(args.redis_core, pinned), args.redis_rt) if "redis" in args.bus else None
    )
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
                    together = workers == 1 or args.workers_one_core
                    run = run_once(one, clients, rate, pinned and together)
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
    "| CPU µs per delivered msg | daemon CPU µs per msg | Δ p50 / p99 ms vs local "
    "| hop p50 / p99 ms (in the node) | hop events under 1 / 3 ms | daemon rate vs 1 worker |"
)


def print_comparison(runs: list[Any]) -> None:
    """Per N: each run's CPU per delivered message, the hop, and the workers' scaling.

    The hop is measured two ways: the end-to-end difference against the local row (the
    clients' p50/p99 less the local bus's, whose run-to-run spread at 5,000 clients is
    itself ±10 ms), and in the node, per event (``fxgate_bus_hop_seconds`` over the
    window: publish → the node's read of it back from Redis; one worker only, as another
    worker could answer the second scrape). The workers' scaling is the daemon side's
    capacity with a core per worker, from what it costs per message: W x (µs per message
    with one worker) / (µs per message with W), daemon processes only (redis-server and
    the load generator excluded). On two cores the workers share them with the load
    generator and Redis, which makes each message dearer (context switches, caches), so
    the figure errs low. With ``--workers-one-core`` the W workers share core 0 instead,
    as one worker has it, with the load generator and Redis on core 1 as for one
    worker: what is left over one worker's cost is the second worker's own (every event
    decoded and encoded twice, half-length passes) plus switching between the two on
    one core, which a core each would not pay; that figure still errs low, by less."""
    print()
    print(COMPARE_HEADER)
    print("|" + "---|" * COMPARE_HEADER.count(" | ") + "---|")
    local = {r.clients: r for r in runs if r.bus == "local" and r.workers == 1}
    single = {r.clients: r for r in runs if r.bus == "redis" and r.workers == 1}

    def own_per_msg(r: Any) -> float:
        rate = r.loadgen.get("msgs_per_sec", 0) or 1
        return float(r.daemon_cpu_pct) / 100 / rate * 1e6

    for r in runs:
        lg = r.loadgen
        rate = lg.get("msgs_per_sec", 0) or 1
        per_msg = r.server_cpu_pct / 100 / rate * 1e6
        base = local.get(r.clients)
        delta = "-"
        if base is not None and base is not r:
            delta = (
                f"{lg['p50_ms'] - base.loadgen['p50_ms']:+.2f} / "
                f"{lg['p99_ms'] - base.loadgen['p99_ms']:+.2f}"
            )
        hop = r.hop if r.workers == 1 else {}
        hop_ms = f"{hop['p50_ms']:.2f} / {hop['p99_ms']:.2f}" if hop else "-"
        under = f"{100 * hop['under_1ms']:.1f} % / {100 * hop['under_3ms']:.1f} %" if hop else "-"
        one = single.get(r.clients)
        scale = "-"
        if r.workers > 1 and one is not None and own_per_msg(r) > 0:
            scale = f"{r.workers * own_per_msg(one) / own_per_msg(r):.2f}×"
        print(
            f"| {r.clients:,} | {r.bus} | {r.workers} | {lg.get('msgs_per_sec', 0):,.0f} "
            f"| {lg.get('p50_ms', 0):.2f} | {lg.get('p99_ms', 0):.2f} | {r.server_cpu_pct:.0f} "
            f"| {per_msg:.2f} | {own_per_msg(r):.2f} | {delta} | {hop_ms} | {under} | {scale} |"
        )
