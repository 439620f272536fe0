"""Market-data fan-out benchmark: one fxgate daemon, N WebSocket clients, one table.

For each client count N it starts a fresh daemon on the paper feed (pinned to core 0),
issues a token, runs the C load generator (``bench/loadgen.c``, pinned to core 1) with N
connections subscribed to every symbol, samples the daemon's CPU over the load
generator's measured window, stops the daemon with SIGTERM and prints a row:
delivered messages/s against what the feed demanded, tick-to-client latency p50/p99/max,
loss, and the CPU of both sides. ``--find-max`` instead raises the tick rate for one N
until the target breaks. ``--dialect NAME,...`` runs, at each N, the canonical endpoint
first and then each named row of ``bench/dialects.py`` (a fresh daemon each), and
``--reference NAME,...`` seed 002's own Flask-SocketIO stack (``bench/seed002_reference.py``)
speaking the ``socketio`` row, or ``floor`` (``bench/floor.c``: the same ticks sent by bare
``send()`` calls in C, what the host charges any server), then prints each against the
canonical run;
``--dialect-rates 1,0.75`` runs each dialect row at each fraction of the canonical row's
rate (the dialect target asks for 70 % of canonical's throughput at p99 < 15 ms). See
``bench/README.md`` for the method.

    python bench/fanout.py --clients 100,1000,5000 --duration 20
    python bench/fanout.py --clients 1000 --find-max
    python bench/fanout.py --clients 1000,5000 --dialect socketio --reference flask-socketio
    python bench/fanout.py --clients 1000 --dialect all --reference floor
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cluster_bench
from dialects import CANONICAL, DIALECTS, SOCKETIO, BenchDialect
from fxdaemon import BenchDaemon, add_daemon_arguments

BENCH = Path(__file__).resolve().parent
LOADGEN_SRC = BENCH / "loadgen.c"
LOADGEN_BIN = BENCH / "bin" / "loadgen"
FLOOR_SRC = BENCH / "floor.c"
FLOOR_BIN = BENCH / "bin" / "floor"

SYMBOLS = [
    "EURUSD",
    "GBPUSD",
    "USDJPY",
    "USDCHF",
    "AUDUSD",
    "USDCAD",
    "NZDUSD",
    "EURGBP",
    "EURJPY",
    "XAUUSD",
]

# The issue's targets: messages/s the feed demands by default, and the p99 bound.
DEMAND_SMALL = 170_000  # N <= 1000: on par with Node.js `ws`
DEMAND_LARGE = 125_000  # N > 1000: Node.js at 5,000 clients
THROUGHPUT_TARGETS = {1000: 170_000, 5000: 125_000}
CLIENT_CPU_WARN = 80.0  # above this the load generator may be what limits the numbers
# The dialect issues' targets: at N <= 1,000, p99 under 15 ms and 70 % of the canonical
# endpoint's throughput in the same run.
DIALECT_P99_MS = 15.0
DIALECT_SHARE = 0.70

# --reference NAME: seed 002's stack (bench/seed002_reference.py --stack STACK), which
# speaks the socketio row, or FLOOR (bench/floor.c), which speaks the canonical one.
FLOOR = "floor"
REFERENCES = {
    "flask-socketio": "flask-threading",
    "flask-socketio-gevent": "flask-gevent",
    "python-socketio": "python-socketio",
    FLOOR: "bench/floor.c: bare send() calls in C, the host's floor",
}
REFERENCE_TOKEN = "bench-reference"  # the reference servers accept any non-empty token

CLK_TCK = os.sysconf("SC_CLK_TCK")


def p99_target_ms(clients: int, dialect: str = CANONICAL.name) -> float:
    if dialect != CANONICAL.name and clients <= 1000:
        return DIALECT_P99_MS
    return 10.0 if clients <= 1000 else 50.0


def default_tick_rate(clients: int, nsym: int) -> float:
    """Mean ticks/s per symbol so that N clients x symbols x rate hits the issue's demand."""
    demand = DEMAND_SMALL if clients <= 1000 else DEMAND_LARGE
    return round(demand / (clients * nsym), 3)


@dataclass
class Run:
    clients: int
    tick_rate: float  # per symbol
    nsym: int
    dialect: str = CANONICAL.name
    reference: str = ""  # a --reference name: not fxgate, shown for comparison, not judged
    compared: bool = False  # part of a --dialect/--reference table: counted in updates/s
    #: The fraction of the canonical row's tick rate a dialect row ran at (--dialect-rates).
    rate_share: float = 1.0
    loadgen: dict = field(default_factory=dict)
    server_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0  # busy CPU on the machine not used by daemon or loadgen
    loadavg: str = ""
    server_errors: int = 0
    failed: list[str] = field(default_factory=list)
    #: The daemon's processes alone (without redis-server), % of one core.
    daemon_cpu_pct: float = 0.0
    #: The Redis bus's own hop (``fxgate_bus_hop_seconds`` over the window), when it has one.
    hop: dict = field(default_factory=dict)

    @property
    def total_tick_rate(self) -> float:
        return self.tick_rate * self.nsym

    @property
    def label(self) -> str:
        if self.reference == FLOOR:
            return f"{FLOOR} (`bench/floor.c`, C)"
        if self.reference:
            return f"{self.reference} (seed 002, {REFERENCES[self.reference]})"
        at = f" at {self.rate_share:.0%}" if self.rate_share != 1 else ""
        return f"{self.dialect} `{DIALECTS[self.dialect].path.split('?')[0]}`{at}"

    @property
    def by_count(self) -> bool:
        """Loss counted without offsets: only ticks that arrived within the grace count."""
        return "count" in str(self.loadgen.get("loss_method", "offset"))

    @property
    def delivered(self) -> float:
        """Market updates/s: the measure dialects are compared by (frames differ: Engine.IO
        pings, batches). The canonical table keeps every message/s, as before."""
        lg = self.loadgen
        if not self.compared:
            return float(lg.get("msgs_per_sec", 0.0))
        return float(lg.get("market_per_sec", lg.get("msgs_per_sec", 0.0)))

    @property
    def expected(self) -> float:
        return self.loadgen.get("connected", 0) * self.total_tick_rate

    @property
    def produced(self) -> float:
        """Messages/s the feed actually produced for the connected clients (Poisson noise)."""
        return self.loadgen.get("connected", 0) * self.loadgen.get("feed_ticks_per_sec", 0.0)

    def violations(self) -> list[str]:
        """The target's conditions: all clients, p99 under the bound, nothing lost."""
        lg, failed = self.loadgen, []
        if not lg:
            return ["the load generator produced no result"]
        target = p99_target_ms(self.clients, self.dialect)
        if lg["connected"] < self.clients:
            failed.append(f"only {lg['connected']}/{self.clients} clients connected")
        if lg["p99_ms"] >= target:
            failed.append(f"p99 {lg['p99_ms']:.1f} ms >= {target:.0f} ms")
        if lg["gaps"]:
            by_offset = lg.get("loss_method", "offset") == "offset"
            how = "offset gaps" if by_offset else "missing by count"
            failed.append(f"{lg['gaps']} messages lost or conflated ({how})")
        if lg["closed_by_server"]:
            failed.append(f"{lg['closed_by_server']} connections closed by the server")
        feed = lg.get("feed_ticks_per_sec", 0.0)
        if feed < 0.9 * self.total_tick_rate:
            late = (
                " (or, counted without offsets, its ticks came later than the loss grace "
                "or were conflated for every client)"
                if self.by_count
                else ""
            )
            failed.append(
                f"the feed produced {feed:,.0f} ticks/s, < 90% of the configured "
                f"{self.total_tick_rate:,.0f}: the daemon's feed fell behind{late}"
            )
        if self.delivered < 0.95 * self.produced:
            failed.append(
                f"delivered {self.delivered:,.0f}/s < 95% of the {self.produced:,.0f}/s "
                "the feed produced for the connected clients"
            )
        return failed

    def check(self) -> list[str]:
        """violations() plus what makes a run not count against the issue's target."""
        failed = self.violations()
        lg = self.loadgen
        if lg:
            # A dialect row run at a fraction of the rate on purpose is judged by its
            # share of the canonical row (judge_shares), not by the canonical's demand.
            goal = THROUGHPUT_TARGETS.get(self.clients) if self.rate_share == 1 else None
            if goal and self.expected < goal:
                failed.append(f"the configured demand {self.expected:,.0f}/s < target {goal:,}/s")
            if lg["client_cpu_pct"] > CLIENT_CPU_WARN:
                failed.append(
                    f"load generator at {lg['client_cpu_pct']:.0f}% CPU: it may be the bottleneck"
                )
        if self.server_errors:
            failed.append(f"{self.server_errors} tracebacks in the daemon's log")
        self.failed = failed
        return failed


def build(src: Path, binary: Path, *libs: str) -> Path:
    """Compile a bench C file into bench/bin/ when the binary is missing or older."""
    if binary.exists() and binary.stat().st_mtime >= src.stat().st_mtime:
        return binary
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        sys.exit(f"fanout: no C compiler (gcc) found to build bench/{src.name}")
    binary.parent.mkdir(exist_ok=True)
    cmd = [cc, "-O2", "-Wall", "-o", str(binary), str(src), *libs]
    print("building:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    return binary


def build_loadgen() -> Path:
    return build(LOADGEN_SRC, LOADGEN_BIN)


def raise_nofile(need: int) -> None:
    """Children inherit the limit: the daemon and the load generator each hold N sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    new_hard = hard if hard == resource.RLIM_INFINITY or hard >= need else need
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, new_hard))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        print(
            f"fanout: warning: RLIMIT_NOFILE is {hard}, below the {need} this run needs",
            file=sys.stderr,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fxgate_command(explicit: str | None) -> list[str]:
    if explicit:
        return explicit.split()
    beside = Path(sys.executable).with_name("fxgate")  # skips pyenv's shim
    if beside.exists():
        return [str(beside)]
    found = shutil.which("fxgate")
    if found:
        return [found]
    sys.exit("fanout: the fxgate command is not installed (pip install -e .)")


# Diagnostic only (--stamp-at-publish): the hub stamps the envelope's "timestamp" with the
# time it publishes the event instead of the tick's own (simulated arrival) time, so the
# latency measured is the hub's fan-out alone, without the feed's batching delay.
_PUBLISH_STAMP = """
import sys
import fxgate.domain.timefmt as timefmt
import fxgate.hub.hub as hub
if not hasattr(hub, "iso_ms"):
    sys.exit("--stamp-at-publish: fxgate.hub.hub no longer uses iso_ms; update bench/fanout.py")
hub.iso_ms = lambda ts=None: timefmt.iso_ms()
from fxgate.cli.main import main
sys.exit(main())
"""


def serve_command(args: argparse.Namespace) -> list[str]:
    if args.stamp_at_publish:
        return [sys.executable, "-c", _PUBLISH_STAMP]
    return fxgate_command(args.fxgate)


def pin(core: int, enabled: bool) -> list[str]:
    return ["taskset", "-c", str(core)] if enabled else []


def proc_cpu_secs(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_secs() -> float:
    """CPU seconds spent busy by the whole machine (all cores) since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / CLK_TCK


def make_daemon(
    args: argparse.Namespace, tick_rate: float, pinned: bool, dialect: BenchDialect = CANONICAL
) -> BenchDaemon:
    env = dict(os.environ)
    env.update(
        FXGATE_PAPER_TICK_RATE=repr(tick_rate),
        FXGATE_PAPER_SEED="1",
        FXGATE_PAPER_SYMBOLS=json.dumps(args.symbols),
        FXGATE_WS_CONNECTIONS_PER_MINUTE="1000000",
        FXGATE_LOG_LEVEL="warning",
    )
    env.update(dict(dialect.daemon_env))  # the row's own settings; --env still overrides
    if args.queue_max_bytes:
        env["FXGATE_WS_QUEUE_MAX_BYTES"] = str(args.queue_max_bytes)
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    return BenchDaemon(
        cmd=fxgate_command(args.fxgate),
        serve_cmd=serve_command(args),
        env=env,
        port=args.port or free_port(),
        pin=pin(0, pinned),
        start_timeout=args.start_timeout,
        keep_state=args.keep_state,
    )


def make_reference(
    args: argparse.Namespace, name: str, tick_rate: float, pinned: bool
) -> BenchDaemon:
    """Seed 002's stack or the floor in place of the daemon: same pinning, feed rate and
    symbols."""
    if name == FLOOR:
        cmd = [str(build(FLOOR_SRC, FLOOR_BIN, "-lm"))]
    else:
        cmd = [sys.executable, str(BENCH / "seed002_reference.py"), "--stack", REFERENCES[name]]
    cmd += ["--tick-rate", repr(tick_rate), "--symbols", ",".join(args.symbols)]
    return BenchDaemon(
        cmd=cmd,
        env=dict(os.environ),
        port=args.port or free_port(),
        pin=pin(0, pinned),
        start_timeout=args.start_timeout,
        keep_state=args.keep_state,
        prefix="fxgate-bench-ref-",
    )


def dialect_arguments(
    dialect: BenchDialect, token: str, symbols: list[str]
) -> tuple[str, list[str]]:
    """The URL's path and the load generator's options for one row of bench/dialects.py:
    ``{token}`` filled in everywhere, ``{symbols}`` as a JSON list in the frames and
    comma-separated in the path."""

    def fill(text: str, symbols_text: str) -> str:
        return text.replace("{token}", token).replace("{symbols}", symbols_text)

    out: list[str] = []
    for frame in dialect.hello:
        out += ["--hello", fill(frame, json.dumps(symbols, separators=(",", ":")))]
    if not dialect.canonical_envelope:
        out += ["--subscribed", dialect.subscribed, "--market", dialect.market]
    if dialect.engineio:
        out.append("--engineio")
    if dialect.deflate:
        out.append("--deflate")
    return fill(dialect.path, ",".join(symbols)), out


def run_once(
    args: argparse.Namespace,
    clients: int,
    tick_rate: float,
    pinned: bool,
    dialect: BenchDialect = CANONICAL,
    reference: str = "",
    compared: bool = False,
    rate_share: float = 1.0,
) -> Run:
    run = Run(
        clients=clients,
        tick_rate=tick_rate,
        nsym=len(args.symbols),
        dialect=dialect.name,
        reference=reference,
        compared=compared,
        rate_share=rate_share,
    )
    if reference:
        daemon = make_reference(args, reference, tick_rate, pinned)
    else:
        daemon = make_daemon(args, tick_rate, pinned, dialect)
    print(
        f"\n== {run.label}  N={clients}  tick rate {tick_rate:g}/s/symbol "
        f"({tick_rate * run.nsym:,.0f} ticks/s)  port {daemon.port}",
        file=sys.stderr,
    )
    try:
        daemon.start()
        token = REFERENCE_TOKEN if reference else daemon.issue_token("bench")
        path, options = dialect_arguments(dialect, token, args.symbols)
        cmd = [
            *pin(1, pinned),
            str(args.loadgen),
            "--url",
            f"ws://127.0.0.1:{daemon.port}{path}",
            *options,
            "--clients",
            str(clients),
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
            "--rate",
            str(args.connect_rate),
        ]
        lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples: dict[str, tuple[float, float, float]] = {}
        own: dict[str, float] = {}
        hops: dict[str, list[tuple[float, float]] | None] = {}
        pid = daemon.pid

        profiler: list[subprocess.Popen[bytes]] = []

        def watch_stderr() -> None:
            assert lg.stderr is not None
            for line in lg.stderr:
                if line.startswith("# window start") or line.startswith("# window end"):
                    key = line.split()[-1]
                    with contextlib.suppress(OSError):
                        cpu = cluster_bench.tree_cpu_secs(pid, proc_cpu_secs)
                        samples[key] = (time.monotonic(), cpu, machine_busy_secs())
                        own[key] = cluster_bench.tree_cpu_secs(pid, proc_cpu_secs, extra=False)
                    hops[key] = cluster_bench.scrape_hop(daemon.port)
                    if key == "start" and args.profile:
                        profiler.append(start_profiler(args, pid, clients, tick_rate))
                print("   loadgen:", line.rstrip(), file=sys.stderr)

        watcher = threading.Thread(target=watch_stderr, daemon=True)
        watcher.start()
        budget = 60 + clients / args.connect_rate * 3 + args.warmup + args.duration + 30
        killer = threading.Timer(budget, lg.kill)
        killer.start()
        assert lg.stdout is not None
        out = lg.stdout.read()  # stderr belongs to the watcher thread
        lg.wait()
        killer.cancel()
        watcher.join(timeout=5)
        for prof in profiler:
            prof.wait(timeout=args.duration + 30)
        line = next((x for x in reversed(out.splitlines()) if x.startswith("{")), "")
        if not line:
            raise RuntimeError(f"loadgen exited with {lg.returncode} and no result")
        run.loadgen = json.loads(line)
        if "start" in samples and "end" in samples:
            (t0, c0, b0), (t1, c1, b1) = samples["start"], samples["end"]
            wall = max(t1 - t0, 1e-9)
            run.server_cpu_pct = 100.0 * (c1 - c0) / wall
            lg_cpu = run.loadgen["client_cpu_pct"]
            run.other_cpu_pct = max(0.0, 100.0 * (b1 - b0) / wall - run.server_cpu_pct - lg_cpu)
            if "start" in own and "end" in own:
                run.daemon_cpu_pct = 100.0 * (own["end"] - own["start"]) / wall
            run.hop = cluster_bench.hop_over(hops.get("start"), hops.get("end"))
        run.loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    finally:
        rc = daemon.stop()
        run.server_errors = daemon.tracebacks()
        if rc not in (None, 0, -signal.SIGTERM):
            print(f"   daemon exited with {rc} after SIGTERM:\n{daemon.tail()}", file=sys.stderr)
        daemon.cleanup()
    run.check()
    lgr = run.loadgen
    print(
        f"   delivered {run.delivered:,.0f}/s of {run.expected:,.0f}/s, "
        f"p50 {lgr['p50_ms']} p99 {lgr['p99_ms']} max {lgr['max_ms']} ms, gaps {lgr['gaps']}, "
        f"server CPU {run.server_cpu_pct:.0f}%, client CPU {lgr['client_cpu_pct']:.0f}%, "
        f"other load {run.other_cpu_pct:.0f}%",
        file=sys.stderr,
    )
    return run


HEADER = (
    "| N | tick rate, ticks/s total (observed) | delivered msgs/s | expected msgs/s | p50 ms "
    "| p99 ms | p99 at read ms | max ms | 1st-delivery p99 ms | loss (gaps) | server CPU % "
    "| client CPU % | other load % |"
)


def start_profiler(
    args: argparse.Namespace, pid: int, clients: int, tick_rate: float
) -> subprocess.Popen[bytes]:
    """py-spy over the measured window: folded stacks (a .txt) for summarize_profile."""
    args.profile.mkdir(parents=True, exist_ok=True)
    out = args.profile / f"fanout-n{clients}-r{tick_rate:g}.txt"
    cmd = ["py-spy", "record", "--format", "raw", "-r", "100", "-p", str(pid)]
    cmd += ["-d", str(max(1, int(args.duration) - 1)), "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, top: int = 20) -> str:
    """Self and inclusive sample shares per function from py-spy's folded stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames[1:]):  # frames[0] is the process/thread name
            incl[frame] = incl.get(frame, 0) + n
    lines = [f"{path.name}: {total} samples", "  self %  function"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}  {frame}")
    lines.append("  incl %  function")
    for frame, n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}  {frame}")
    return "\n".join(lines)


def read_p99(lg: dict[str, float]) -> str:
    """The p99 timed when the load generator read the bytes, not when they arrived."""
    return f"{lg['read_p99_ms']:.1f}" if "read_p99_ms" in lg else "-"


def row(run: Run) -> str:
    lg = run.loadgen
    loss = f"{lg['gaps']}"
    if lg["closed_by_server"]:
        loss += f" (+{lg['closed_by_server']} closed)"
    return (
        f"| {run.clients:,} | {run.total_tick_rate:,.0f} ({lg.get('feed_ticks_per_sec', 0):,.0f}) "
        f"| {lg['msgs_per_sec']:,.0f} "
        f"| {run.expected:,.0f} | {lg['p50_ms']:.1f} | {lg['p99_ms']:.1f} "
        f"| {read_p99(lg)} | {lg['max_ms']:.1f} "
        f"| {lg.get('first_p99_ms', 0):.1f} | {loss} | {run.server_cpu_pct:.0f} "
        f"| {lg['client_cpu_pct']:.0f} | {run.other_cpu_pct:.0f} |"
    )


def print_table(runs: list[Run]) -> None:
    print()
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    for run in runs:
        print(row(run))
    print()
    any_failed = False
    for run in runs:
        if run.failed:
            any_failed = True
            print(f"N={run.clients} at {run.total_tick_rate:,.0f} ticks/s: not met:")
            for item in run.failed:
                print(f"  - {item}")
    if not any_failed:
        print("All conditions met.")
    if any(r.other_cpu_pct > 20 for r in runs):
        print(
            "Note: other processes used the CPU during the window ('other load'): "
            "the numbers are provisional."
        )


COMPARE_HEADER = (
    "| endpoint | N | tick rate, ticks/s total (observed) | delivered updates/s "
    "| % of canonical | p50 ms | p99 ms | p99 at read ms | max ms | 1st-delivery p99 ms | loss "
    "| server CPU % | client CPU % | other load % |"
)


def canonical_of(run: Run, runs: list[Run]) -> Run | None:
    """The reference of a run: the canonical endpoint at the same N, in the same invocation."""
    for other in runs:
        if other.clients == run.clients and other.dialect == CANONICAL.name and not other.reference:
            return other
    return None


def share_of(run: Run, runs: list[Run]) -> float | None:
    base = canonical_of(run, runs)
    if base is None or not base.loadgen or not run.loadgen or base.delivered <= 0:
        return None
    return run.delivered / base.delivered


def judge_shares(runs: list[Run]) -> None:
    """The dialect issues' throughput target: 70 % of the canonical run's at N <= 1,000."""
    for run in runs:
        if run.reference or run.dialect == CANONICAL.name or run.clients > 1000:
            continue
        share = share_of(run, runs)
        if share is not None and share < DIALECT_SHARE:
            run.failed.append(
                f"{share:.0%} of the canonical endpoint's updates/s < {DIALECT_SHARE:.0%}"
            )


def floor_note(clients: int, runs: list[Run]) -> str:
    """The floor's p99 at the same N in this invocation, if it ran: what any server got
    from the host then, which a verdict is read against."""
    for run in runs:
        if run.reference == FLOOR and run.clients == clients and run.loadgen:
            return f"; the floor's p99 in this run: {run.loadgen['p99_ms']:.1f} ms"
    return ""


def dialect_verdicts(runs: list[Run]) -> dict[tuple[str, int], str]:
    """Per dialect and N <= 1,000: met when one of its rows meets every condition (a row
    at a fraction of the rate still needs its share of canonical's updates/s), naming
    the fullest such row; otherwise the conditions its fullest row missed. Each names
    the floor's p99 when the floor ran at that N."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        if run.reference or run.dialect == CANONICAL.name or run.clients > 1000:
            continue
        groups.setdefault((run.dialect, run.clients), []).append(run)
    out: dict[tuple[str, int], str] = {}
    for (name, clients), rows in groups.items():
        rows.sort(key=lambda r: -r.rate_share)
        share = {id(r): share_of(r, runs) for r in rows}
        good = [r for r in rows if not r.failed and r.loadgen]
        if good:
            r = good[0]
            s = share[id(r)]
            at = f"{s:.0%} of canonical's updates/s" if s is not None else "?"
            p99 = f"p99 {r.loadgen['p99_ms']:.1f} ms{floor_note(clients, runs)}"
            out[(name, clients)] = f"{name} N={clients}: met at {at} ({p99})"
        else:
            missed = "; ".join(rows[0].failed) or "no result"
            out[(name, clients)] = (
                f"{name} N={clients}: not met ({missed}{floor_note(clients, runs)})"
            )
    return out


def compare_row(run: Run, runs: list[Run]) -> str:
    lg = run.loadgen
    share = share_of(run, runs)
    loss = f"{lg['gaps']} ({lg.get('loss_method', 'offset')})"
    seen = lg.get("feed_ticks_per_sec", 0.0) / max(run.total_tick_rate, 1e-9)
    if run.by_count and seen < 0.9:
        loss = f"? (count: {seen:.0%} of the ticks seen in time; late or conflated)"
    if lg["closed_by_server"]:
        loss += f" (+{lg['closed_by_server']} closed)"
    # No tick reached its first client inside the window (a stack seconds behind): none.
    first = f"{lg.get('first_p99_ms', 0):.1f}" if lg.get("first_max_ms", 0) > 0 else "-"
    return (
        f"| {run.label} | {run.clients:,} "
        f"| {run.total_tick_rate:,.0f} ({lg.get('feed_ticks_per_sec', 0):,.0f}) "
        f"| {run.delivered:,.0f} | {'-' if share is None else f'{100 * share:.0f}'} "
        f"| {lg['p50_ms']:.1f} | {lg['p99_ms']:.1f} | {read_p99(lg)} | {lg['max_ms']:.1f} "
        f"| {first} | {loss} | {run.server_cpu_pct:.0f} "
        f"| {lg['client_cpu_pct']:.0f} | {run.other_cpu_pct:.0f} |"
    )


def print_comparison(runs: list[Run]) -> None:
    print()
    print(COMPARE_HEADER)
    print("|" + "---|" * COMPARE_HEADER.count(" | ") + "---|")
    for run in runs:
        if run.loadgen:
            print(compare_row(run, runs))
    print()
    judged = [r for r in runs if not r.reference]
    for run in judged:
        if run.failed:
            print(f"{run.label} N={run.clients}: not met:")
            for item in run.failed:
                print(f"  - {item}")
    verdicts = dialect_verdicts(runs)
    if verdicts:
        print()
        print(
            f"The dialect target at N <= 1,000 (>= {DIALECT_SHARE:.0%} of the canonical "
            f"endpoint's updates/s, p99 < {DIALECT_P99_MS:.0f} ms, nothing lost), per endpoint:"
        )
        for line in verdicts.values():
            print(f"  - {line}")
    if not any(r.failed for r in judged):
        print("All conditions met.")
    if any(r.reference for r in runs):
        print(
            "Reference rows (seed 002's stack, the floor) are measured for comparison, not judged."
        )
    if any(r.other_cpu_pct > 20 for r in runs):
        print(
            "Note: other processes used the CPU during the window ('other load'): "
            "the numbers are provisional."
        )


def compare(args: argparse.Namespace, pinned: bool) -> list[Run]:
    """At each N: the canonical endpoint first, then each --dialect, then each --reference."""
    runs: list[Run] = []
    for clients in args.clients:
        rate = args.tick_rate or default_tick_rate(clients, len(args.symbols))
        runs.append(run_once(args, clients, rate, pinned, compared=True))
        for name in args.dialect:
            if name == CANONICAL.name:
                continue
            for share in args.dialect_rates:
                at, one = rate * share, DIALECTS[name]
                row = run_once(args, clients, at, pinned, one, compared=True, rate_share=share)
                runs.append(row)
        ref_rate = args.reference_tick_rate or rate
        for name in args.reference:
            speaks = CANONICAL if name == FLOOR else SOCKETIO
            try:
                runs.append(run_once(args, clients, ref_rate, pinned, speaks, name, compared=True))
            except RuntimeError as exc:  # e.g. the bench extra not installed
                print(f"fanout: reference {name} N={clients} skipped: {exc}", file=sys.stderr)
    judge_shares(runs)
    print_comparison(runs)
    return runs


def passes(run: Run) -> bool:
    return not run.violations()


def find_max(args: argparse.Namespace, clients: int, pinned: bool) -> list[Run]:
    """Raise the tick rate by --step until p99 breaks the target or loss appears."""
    nsym = len(args.symbols)
    rate = args.tick_rate or default_tick_rate(clients, nsym)
    runs: list[Run] = []
    best: Run | None = None
    first = run_once(args, clients, rate, pinned)
    runs.append(first)
    if passes(first):
        best = first
        for _ in range(args.max_steps):
            rate = round(rate * args.step, 3)
            run = run_once(args, clients, rate, pinned)
            runs.append(run)
            if not passes(run):
                break
            best = run
    else:
        for _ in range(args.max_steps):
            rate = round(rate / args.step, 3)
            run = run_once(args, clients, rate, pinned)
            runs.append(run)
            if passes(run):
                best = run
                break
    print_table(runs)
    if best:
        print(
            f"Highest passing rate for N={clients}: {best.total_tick_rate:,.0f} ticks/s "
            f"= {best.loadgen['msgs_per_sec']:,.0f} msgs/s delivered at p99 "
            f"{best.loadgen['p99_ms']:.1f} ms (target < {p99_target_ms(clients):.0f} ms, no loss)"
        )
    else:
        print(f"No tried rate passed for N={clients}.")
    return runs


def names_in(table: Mapping[str, object]) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names, each a key of ``table`` (``all``: every one)."""

    def parse(text: str) -> list[str]:
        names = [x.strip() for x in text.split(",") if x.strip()]
        if names == ["all"]:
            return list(table)
        unknown = [n for n in names if n not in table]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)} (known: {', '.join(table)})"
            )
        return list(dict.fromkeys(names))

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--clients",
        default="100,1000,5000",
        type=lambda s: [int(x) for x in s.split(",") if x],
        help="comma-separated client counts (default 100,1000,5000)",
    )
    p.add_argument(
        "--tick-rate",
        type=float,
        default=None,
        help="mean ticks/s per symbol; default: 170,000 msgs/s demand for N <= 1000, "
        "125,000 above (17/s per symbol at N=1000, 2.5/s at N=5000)",
    )
    p.add_argument("--duration", type=float, default=20, help="measured seconds (default 20)")
    p.add_argument("--warmup", type=float, default=5, help="seconds after connecting, not measured")
    p.add_argument("--connect-rate", type=float, default=500, help="new connections per second")
    p.add_argument("--find-max", action="store_true", help="raise the tick rate until it breaks")
    p.add_argument("--step", type=float, default=1.25, help="--find-max rate factor per step")
    p.add_argument("--max-steps", type=int, default=10)
    p.add_argument(
        "--symbols",
        default=SYMBOLS,
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        help="comma-separated symbols (default: the ten of the issue)",
    )
    p.add_argument("--queue-max-bytes", type=int, default=0, help="FXGATE_WS_QUEUE_MAX_BYTES")
    p.add_argument(
        "--stamp-at-publish",
        action="store_true",
        help="diagnostic: stamp messages when the hub publishes them, to measure the fan-out "
        "without the feed's batching delay (not the target's measure)",
    )
    p.add_argument(
        "--dialect",
        default=[],
        type=names_in(DIALECTS),
        help="comma-separated rows of bench/dialects.py to run after the canonical endpoint "
        f"at each N ({', '.join(DIALECTS)}), or all",
    )
    p.add_argument(
        "--dialect-rates",
        default=[1.0],
        type=lambda s: [float(x) for x in s.split(",") if x],
        help="comma-separated fractions of the canonical row's tick rate to run each "
        "--dialect row at (default 1; e.g. 1,0.75)",
    )
    p.add_argument(
        "--reference",
        default=[],
        type=names_in(REFERENCES),
        help="other servers to run the same way, for comparison: seed 002's stack over "
        "the socketio row (flask-socketio, flask-socketio-gevent: the bench extra; "
        f"python-socketio), or {FLOOR} (bench/floor.c, the host's floor: bare send() calls "
        "in C, over the canonical row)",
    )
    p.add_argument(
        "--reference-tick-rate",
        type=float,
        default=None,
        help="ticks/s per symbol for the --reference runs (default: the same as the others; "
        "a lower one measures their latency at a load they sustain)",
    )
    add_daemon_arguments(p)
    cluster_bench.add_cluster_arguments(p)
    p.add_argument("--json", type=Path, default=None, help="also write every run to this file")
    p.add_argument("--strict", action="store_true", help="exit 1 when a condition is not met")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.loadgen = build_loadgen()
    raise_nofile(max(args.clients) * 2 + 1024)
    cores = os.cpu_count() or 1
    pinned = not args.no_pin and cores >= 2 and shutil.which("taskset") is not None
    if not pinned:
        print("fanout: not pinning (needs taskset and >= 2 cores)", file=sys.stderr)
    runs: list[Run] = []
    if args.find_max and (args.dialect or args.reference):
        print("fanout: --find-max runs the canonical endpoint only", file=sys.stderr)
        return 2
    try:
        if cluster_bench.wanted(args):
            runs = cluster_bench.run_matrix(args, pinned, run_once, pin)
            print_table(runs)
            cluster_bench.print_comparison(runs)
        elif args.dialect or args.reference:
            runs = compare(args, pinned)
        elif args.find_max:
            runs = find_max(args, args.clients[0], pinned)
        else:
            for clients in args.clients:
                rate = args.tick_rate or default_tick_rate(clients, len(args.symbols))
                runs.append(run_once(args, clients, rate, pinned))
            print_table(runs)
        if args.profile:
            for prof in sorted(args.profile.glob("fanout-*.txt")):
                print(summarize_profile(prof))
    except RuntimeError as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.json and runs:
            args.json.write_text(
                json.dumps(
                    [
                        {
                            "dialect": r.dialect,
                            "reference": r.reference,
                            "share_of_canonical": share_of(r, runs),
                            "rate_share": r.rate_share,
                            "clients": r.clients,
                            "tick_rate_per_symbol": r.tick_rate,
                            "ticks_per_sec": r.total_tick_rate,
                            "expected_msgs_per_sec": r.expected,
                            "server_cpu_pct": r.server_cpu_pct,
                            "daemon_cpu_pct": r.daemon_cpu_pct,
                            "bus": getattr(r, "bus", "local"),
                            "workers": getattr(r, "workers", 1),
                            "hop": r.hop,
                            "other_cpu_pct": r.other_cpu_pct,
                            "loadavg": r.loadavg,
                            "server_tracebacks": r.server_errors,
                            "not_met": r.failed,
                            "loadgen": r.loadgen,
                        }
                        for r in runs
                    ],
                    indent=2,
                )
            )
    if args.dialect:
        # A dialect is judged by its best row (dialect_verdicts); canonical by its own.
        verdicts = dialect_verdicts(runs)
        failed = any(" not met " in v for v in verdicts.values()) or any(
            r.failed for r in runs if r.dialect == CANONICAL.name and not r.reference
        )
    else:
        failed = any(r.failed for r in runs if not r.reference)
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
