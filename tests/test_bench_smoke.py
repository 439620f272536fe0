"""The benchmarks' tools: the fan-out load generator, checked against a small server of
known behaviour, and a brief run of the REST latency benchmark.

``bench/loadgen.c`` is compiled with gcc (CI installs it; a missing compiler fails here
on purpose) and pointed at a `websockets` server that streams market_data messages with
known offsets, pings each client once and, in the second story, skips offsets and
closes one connection with 4008. The JSON line must count exactly what was sent. The
dialect stories point it, with the ``socketio`` row of ``bench/dialects.py``, at
``bench/seed002_reference.py`` (python-socketio): Engine.IO framing, pings the server
sends, numeric timestamps, and loss counted without offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ("EURUSD", "XAUUSD")
sys.path.insert(0, str(ROOT / "bench"))

from dialects import DIALECTS, SOCKETIO  # noqa: E402
from fanout import dialect_arguments  # noqa: E402


def iso_ms(ts: float) -> str:
    secs = int(ts)
    millis = int((ts - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


@dataclass
class StubFeed:
    """Streams ticks to each subscriber: every `skip_every`-th offset is never sent."""

    skip_every: int = 0
    close_first_with: int = 0
    pongs: int = 0
    sent: int = 0
    subscribed: list[str] = field(default_factory=list)

    def message(self, symbol: str, offset: int, *, snapshot: bool = False) -> str:
        now = time.time()
        data = {
            "symbol": symbol,
            "bid": 1.085,
            "ask": 1.08501,
            # The data's own timestamp is deliberately wrong: latency must come from the
            # envelope's top-level "timestamp", which follows the data object.
            "timestamp": "2000-01-01T00:00:00.000Z",
            "note": 'braces } and "quotes" inside strings',
        }
        if snapshot:
            data["snapshot"] = True
        return json.dumps(
            {
                "type": "market_data",
                "channel": "market-data",
                "data": data,
                "timestamp": iso_ms(now),
                "id": f"{symbol}-{offset}",
                "offset": offset,
                "epoch": "e1",
            },
            separators=(",", ":"),
        )

    async def handler(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "connection", "status": "connected"}))
        request = json.loads(await ws.recv())
        self.subscribed.append(request["channels"][0])
        await ws.send(json.dumps({"type": "subscription", "status": "success"}))
        for symbol in SYMBOLS:
            await ws.send(self.message(symbol, 100, snapshot=True))
        first = len(self.subscribed) == 1
        started = time.monotonic()
        pinged = False
        offset = 100
        try:
            while True:
                offset += 1
                for symbol in SYMBOLS:
                    if self.skip_every and offset % self.skip_every == 0:
                        continue
                    await ws.send(self.message(symbol, offset))
                    self.sent += 1
                if offset == 120 and not pinged:
                    pinged = True
                    await asyncio.wait_for(await ws.ping(b"bench"), timeout=5)
                    self.pongs += 1
                # Inside the measured window: it opens 0.3 s after both clients subscribed.
                if first and self.close_first_with and time.monotonic() - started > 0.8:
                    await ws.close(code=self.close_first_with)
                    return
                await asyncio.sleep(0.005)
        except Exception:  # the client went away at the end of its run
            return


@pytest.fixture(scope="module")
def loadgen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    assert gcc, "gcc is required to build bench/loadgen.c"
    binary = tmp_path_factory.mktemp("bin") / "loadgen"
    subprocess.run(
        [gcc, "-O2", "-Wall", "-Werror", "-o", str(binary), str(ROOT / "bench" / "loadgen.c")],
        check=True,
    )
    return binary


@contextlib.contextmanager
def serve_in_thread(feed: StubFeed | BatchFeed, **options: Any) -> Iterator[int]:
    """The stub server on a free port, in a thread with its own event loop."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []
    stop = asyncio.Event()

    async def main() -> None:
        async with serve(feed.handler, "127.0.0.1", 0, **options) as server:
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield port[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def run_loadgen(binary: Path, port: int, clients: int = 2, duration: float = 1.0) -> dict:
    out = subprocess.run(
        [
            str(binary),
            "--url",
            f"ws://127.0.0.1:{port}/api/ws?token=test",
            "--clients",
            str(clients),
            "--duration",
            str(duration),
            "--warmup",
            "0.3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    assert "# window start" in out.stderr
    return json.loads(lines[0])


def run_bench(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``bench/<script> args`` run as a user would; exit 0 asserted, stderr shown if not."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    assert gcc, "gcc is required to build bench/floor.c"
    binary = tmp_path_factory.mktemp("bin") / "floor"
    source = ROOT / "bench" / "floor.c"
    subprocess.run(
        [gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(source), "-lm"],
        check=True,
    )
    return binary


def test_the_floor_streams_what_the_load_generator_counts(loadgen: Path, floor: Path) -> None:
    """``bench/floor.c``, the reference that measures the host: ``/health`` answers, any
    other plain GET is refused, every client subscribes and gets the feed's ticks with
    an offset per symbol (none lost) at about the rate asked, and SIGTERM stops it."""
    port = free_port()
    feed = ("--tick-rate", "50", "--symbols", "EURUSD,USDJPY,XAUUSD")
    server = subprocess.Popen(
        [str(floor), *feed, "serve", "--host", "127.0.0.1", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert s.recv(100).startswith(b"HTTP/1.1 200 OK")
                break
            assert time.monotonic() < deadline, "the floor did not start"
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 404 Not Found")

        result = run_loadgen(loadgen, port, clients=20, duration=1.5)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert "floor: stopped" in err
    assert result["connected"] == result["open_at_end"] == 20
    assert result["symbols"] == 3
    assert result["loss_method"] == "offset"
    assert result["gaps"] == result["parse_errors"] == result["closed_by_server"] == 0
    assert result["latency_samples"] == result["market_data"] > 0
    # 150 ticks/s in all, Poisson: well inside half to twice that over 1.5 s.
    assert 75 < result["feed_ticks_per_sec"] < 300, result


def test_loadgen_counts_a_clean_stream(loadgen: Path) -> None:
    feed = StubFeed()
    with serve_in_thread(feed) as port:
        result = run_loadgen(loadgen, port)

    assert feed.subscribed == ["market-data", "market-data"]
    assert result["clients"] == 2
    assert result["connected"] == 2
    assert result["symbols"] == 2
    assert result["messages"] > 100
    assert result["latency_samples"] == result["market_data"] == result["messages"]
    assert result["gaps"] == 0
    assert result["dups"] == 0
    assert result["parse_errors"] == 0
    assert result["closed_by_server"] == 0
    assert 0 <= result["p50_ms"] <= result["p99_ms"] <= result["max_ms"] < 1000
    # Latency is timed at the kernel's receive time; the read time can only be later.
    assert result["kernel_ts_reads"] > 0
    assert result["plain_reads"] == 0
    assert result["p99_ms"] <= result["read_p99_ms"] <= result["read_max_ms"]
    assert result["max_ms"] <= result["read_max_ms"]
    assert result["msgs_per_sec"] == pytest.approx(
        result["messages"] / result["duration"], rel=0.01
    )
    assert feed.pongs == 2  # each client answered the ping with a (masked) pong
    assert result["pings"] == 2
    assert 0 <= result["client_cpu_pct"] < 100


def test_loadgen_counts_gaps_and_server_closes(loadgen: Path) -> None:
    feed = StubFeed(skip_every=4, close_first_with=4008)
    with serve_in_thread(feed) as port:
        result = run_loadgen(loadgen, port, duration=1.5)

    assert result["connected"] == 2
    assert result["closed_by_server"] == 1
    assert result["close_codes"] == {"4008": 1}
    assert result["open_at_end"] == 1
    # One offset in four is never sent: a quarter of what the stream produced is lost.
    lost_share = result["gaps"] / (result["gaps"] + result["market_data"])
    assert 0.2 < lost_share < 0.3
    assert result["parse_errors"] == 0


@dataclass
class BatchFeed:
    """A dialect that pushes unasked, batches both symbols in one frame, stamps in epoch
    ms and has no offsets; frames rotate between a map keyed by symbol, a list of quotes
    and a list of per-symbol envelopes around their quote (one update each, not two), and
    go in pairs with the same timestamp (two ticks in one millisecond). Every client gets
    the same ticks, except that the first never gets EURUSD in one frame of five."""

    clients: list[ServerConnection] = field(default_factory=list)
    producer: asyncio.Task[None] | None = None

    def frame(self, n: int, now_ms: float, first: bool) -> str:
        quotes = {sym: {"bid": 1.1, "ask": 1.2, "timestamp": now_ms} for sym in SYMBOLS}
        if first and n % 5 == 0:
            del quotes["EURUSD"]
        data: object = quotes
        if n % 3 == 1:
            data = {"quotes": [{"symbol": sym, **q} for sym, q in quotes.items()]}
        elif n % 3 == 2:
            data = [{"symbol": sym, "data": {"symbol": sym, **q}} for sym, q in quotes.items()]
        return json.dumps({"type": "market_data", "data": data, "session": {"london": True}})

    async def produce(self) -> None:
        n = 0
        now_ms = 0.0
        while True:
            n += 1
            if n % 2:
                now_ms = time.time() * 1000.0
            for i, ws in enumerate(list(self.clients)):
                with contextlib.suppress(Exception):  # a client gone at the end of its run
                    await ws.send(self.frame(n, now_ms, i == 0))
            await asyncio.sleep(0.005)

    async def handler(self, ws: ServerConnection) -> None:
        self.clients.append(ws)
        if self.producer is None:
            self.producer = asyncio.create_task(self.produce())
        await ws.wait_closed()
        self.clients.remove(ws)
        if not self.clients:
            self.producer.cancel()
            self.producer = None


COMPRESSION: dict[str, dict[str, Any]] = {
    "plain": {"compression": None},
    # The server's context kept between messages: an inflate stream per connection.
    "deflate": {"compression": "deflate"},
    # Each message compressed on its own (the dashboard's shared frames): one stream.
    "deflate-no-context": {
        "compression": None,
        "extensions": [ServerPerMessageDeflateFactory(server_no_context_takeover=True)],
    },
}


@pytest.mark.parametrize("compression", list(COMPRESSION))
def test_loadgen_reads_batched_quotes_without_offsets(loadgen: Path, compression: str) -> None:
    feed = BatchFeed()
    deflate = ["--deflate"] if compression != "plain" else []
    with serve_in_thread(feed, **COMPRESSION[compression]) as port:
        out = subprocess.run(
            [
                *(str(loadgen), "--url", f"ws://127.0.0.1:{port}/ws/dashboard", *deflate),
                *("--subscribed", '"type": "market_data"', "--market", '"type": "market_data"'),
                *("--clients", "2", "--duration", "1.5", "--warmup", "0.3"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])

    assert result["connected"] == 2
    assert result["symbols"] == 2
    assert result["parse_errors"] == 0
    assert result["loss_method"] == "count"
    # Each frame carries two quotes, except the first client's every fifth (one).
    assert result["market_data"] == pytest.approx(2 * result["messages"] * 0.95, rel=0.03)
    assert result["latency_samples"] == result["market_data"]
    assert 0 <= result["p50_ms"] <= result["p99_ms"] < 1000
    # The loss window is the first 0.75 s: one EURUSD tick in five missing, for one client.
    eurusd_ticks = result["feed_ticks"] / 2
    assert result["missing_by_count"] == pytest.approx(eurusd_ticks / 5, abs=2)
    assert result["missing_by_count"] > 5
    if deflate:
        assert result["deflate_negotiated"] == 2
        assert result["inflated"] >= result["messages"] > 0
        assert result["inflate_errors"] == 0
    else:
        assert result["inflated"] == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def seed002_server(*options: str) -> Iterator[int]:
    """bench/seed002_reference.py (python-socketio on Tornado) on a free port, until /health."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, str(ROOT / "bench" / "seed002_reference.py"), "serve"),
            *("--stack", "python-socketio", "--port", str(port), *options),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=1) as conn,
            ):
                conn.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    break
            assert time.monotonic() < deadline, "the reference server did not start"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_loadgen_speaks_socketio_and_counts_loss_without_offsets(loadgen: Path) -> None:
    """Engine.IO open, Socket.IO connect with the token, subscribe, every server ping
    answered (a missed pong would drop the client within 0.6 s), ``42["quotes",…]`` with
    epoch-seconds timestamps measured; the first client misses every 4th tick and, with no
    offsets to go by, the count of what it received against the feed shows it."""
    with seed002_server(
        *("--symbols", ",".join(SYMBOLS), "--tick-rate", "40", "--timestamps", "seconds"),
        *("--ping-interval", "0.3", "--ping-timeout", "0.3", "--skip-first-every", "4"),
    ) as port:
        path, options = dialect_arguments(SOCKETIO, "test-token", list(SYMBOLS))
        out = subprocess.run(
            [
                *(str(loadgen), "--url", f"ws://127.0.0.1:{port}{path}", *options),
                *("--clients", "2", "--duration", "2", "--warmup", "0.3"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])

    assert result["connected"] == 2
    assert result["open_at_end"] == 2
    assert result["closed_by_server"] == 0, result["close_codes"]
    assert result["pings"] >= 2 * 5  # 2 s at one ping per 0.3 s, per client
    assert result["symbols"] == 2
    assert result["parse_errors"] == 0
    assert result["loss_method"] == "count"
    assert result["offset_gaps"] == 0
    # The loss window is the first second: 40 ticks/s x 2 symbols.
    assert 60 <= result["feed_ticks"] <= 90, result
    # One tick in four never sent to one client (a tick late past the grace on a busy
    # machine counts as missing too: hence the margin).
    assert result["missing_by_count"] == result["gaps"]
    assert result["missing_by_count"] == pytest.approx(result["feed_ticks"] / 4, abs=4), result
    assert result["latency_samples"] == result["market_data"] > 200
    assert 0 <= result["p50_ms"] <= result["p99_ms"] < 1000


# Every row of bench/dialects.py but the canonical one, which runs first anyway.
SERVED_ROWS = tuple(name for name in DIALECTS if name != "canonical")


def test_fanout_compares_dialects_with_the_canonical_endpoint(tmp_path: Path) -> None:
    """``fanout.py --dialect all --reference …``, briefly: the canonical endpoint of a real
    daemon first, then every row of ``bench/dialects.py`` on its own daemon, then
    seed 002's stack over the ``socketio`` row; one table, each as a share of the
    canonical run, and every client of every row subscribed and counted."""
    report = tmp_path / "fanout.json"
    out = run_bench(
        "fanout.py",
        *("--clients", "2", "--duration", "1.5", "--warmup", "0.3", "--tick-rate", "5"),
        *("--dialect", "all", "--reference", "python-socketio,floor"),
        *("--no-pin", "--json", str(report)),
        timeout=120,
    )
    assert "| endpoint | N | tick rate, ticks/s total (observed) | delivered updates/s |" in (
        out.stdout
    )
    assert "| canonical `/api/ws` | 2 | 50 (" in out.stdout
    assert "| python-socketio (seed 002, python-socketio) | 2 | 50 (" in out.stdout
    assert "| floor (`bench/floor.c`, C) | 2 | 50 (" in out.stdout
    # Each endpoint's verdict is read against what the host gave the floor in this run.
    for name in SERVED_ROWS:
        verdict = rf"^  - {name} N=2: .*the floor's p99 in this run: \d+\.\d ms\)$"
        assert re.search(verdict, out.stdout, re.M), out.stdout
    runs = json.loads(report.read_text())
    assert [(r["dialect"], r["reference"]) for r in runs] == [
        ("canonical", ""),
        *((name, "") for name in SERVED_ROWS),
        ("socketio", "python-socketio"),
        ("canonical", "floor"),
    ]
    for run in runs:
        lg = run["loadgen"]
        assert lg["connected"] == 2, run
        assert lg["open_at_end"] == 2, run
        assert lg["closed_by_server"] == 0, run
        assert lg["parse_errors"] == 0, run
        assert lg["latency_samples"] > 0, run
        assert lg["symbols"] == 10, run
        assert lg["gaps"] == 0, run
        assert 0.5 < run["share_of_canonical"] < 1.5, run
    assert runs[0]["loadgen"]["loss_method"] == runs[-1]["loadgen"]["loss_method"] == "offset"
    assert runs[0]["share_of_canonical"] == 1.0


def test_fanout_runs_a_dialect_at_fractions_of_the_canonical_rate(tmp_path: Path) -> None:
    """``--dialect-rates 1,0.5``: each dialect row twice, the second at half the canonical
    row's tick rate and labelled so, and one verdict per endpoint under the table."""
    report = tmp_path / "fanout.json"
    out = run_bench(
        "fanout.py",
        *("--clients", "2", "--duration", "2", "--warmup", "0.3", "--tick-rate", "10"),
        *("--dialect", "seed003", "--dialect-rates", "1,0.5"),
        *("--no-pin", "--json", str(report)),
        timeout=120,
    )
    assert "| seed003 `/ws` | 2 | 100 (" in out.stdout
    assert "| seed003 `/ws` at 50% | 2 | 50 (" in out.stdout
    # One verdict for the endpoint (met or not: a two-second window at N = 2 is too
    # short for the delivery condition to be a test of anything but luck).
    assert re.search(r"^  - seed003 N=2: (met at |not met \()", out.stdout, re.M), out.stdout
    runs = json.loads(report.read_text())
    assert [(r["dialect"], r["rate_share"]) for r in runs] == [
        ("canonical", 1.0),
        ("seed003", 1.0),
        ("seed003", 0.5),
    ]
    assert runs[2]["ticks_per_sec"] == runs[0]["ticks_per_sec"] / 2
    assert 0.2 < runs[2]["share_of_canonical"] < 0.8, runs[2]


def test_rest_benchmark_runs_and_prints_its_table(tmp_path: Path) -> None:
    """``bench/rest.py`` end to end, briefly: a daemon, two clients, every endpoint of the
    mix answered without an error, the table printed, exit 0."""
    report = tmp_path / "rest.json"
    out = run_bench(
        "rest.py",
        *("--users", "2", "--concurrency", "2", "--duration", "2", "--warmup", "0.5"),
        *("--login-rate", "2", "--no-pin", "--json", str(report)),
        timeout=90,
    )
    assert "| group | endpoint | requests | req/s | p50 ms | p99 ms | max ms | errors" in out.stdout
    for label in ("POST /auth/login", "GET /market/data", "GET /trading/portfolio"):
        assert f"| {label} |" in out.stdout
    [run] = json.loads(report.read_text())
    assert run["concurrency"] == 2
    assert run["errors"] == {}, run["errors"]
    measured = {row["endpoint"]: row["requests"] for row in run["rows"]}
    assert measured["*"] > 0
    for key in ("login", "me", "candles", "portfolio", "orders"):
        assert measured[key] > 0, key


def test_mt5_benchmark_runs_and_prints_its_table(tmp_path: Path) -> None:
    """``bench/mt5.py`` end to end, briefly: the adapter built from the registry over the
    fake terminal, positions opened by hand, ticks delivered exactly once, the table
    printed, exit 0 (the targets are not judged on a busy test machine)."""
    report = tmp_path / "mt5.json"
    out = run_bench(
        "mt5.py",
        *("--symbols", "12", "--rate", "5", "--positions", "6"),
        *("--duration", "1.5", "--warmup", "0.5", "--json", str(report)),
        timeout=90,
    )
    assert out.stdout.startswith("| symbols × ticks/s | positions | ticks/s observed |")
    assert "| 12 × 5 | 6 |" in out.stdout
    [run] = json.loads(report.read_text())
    assert run["symbols"] == 12  # fxgate's ten instruments and two synthetic ones
    assert run["ticks_produced"] > 0
    assert run["ticks_delivered"] > 0
    assert run["ticks_repeated"] == 0
    assert run["ticks_missing"] == 0
    assert 0 < run["latency_p50_ms"] <= run["latency_p99_ms"] <= run["latency_max_ms"]
    assert run["probe_samples"] > 100
    assert run["cpu_total_pct"] > 0
    assert run["events"].get("position (floating)", 0) > 0
