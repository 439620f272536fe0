"""REST API latency benchmark: one fxgate daemon, C clients, seed 003's response-time targets.

Seed 003 ("Performance Requirements") asks: authentication < 200 ms, trading operations
< 100 ms, market data < 50 ms, portfolio data < 300 ms. For each concurrency C this
starts a fresh daemon (pinned to core 0) on a copy of a state folder holding N trader
accounts made with ``fxgate users add`` (and 300 one-minute bars of history for the
charted symbols), logs C clients in, and drives it from this process (pinned to core 1)
with a mix of logins, refreshes, orders, cancels, closes, lists, portfolio and market
data, every client keeping one request in flight (or paced with --rate) for --duration
seconds after a warm-up. It prints a table per endpoint and per group: requests, req/s,
p50/p99/max latency, errors (every non-2xx answer and every failed request), and the
group's target with pass/fail on p99. See ``bench/README.md``, "REST latency (seed 003)".

    python bench/rest.py                                  # C = 10 and 50, 20 s measured each
    python bench/rest.py --concurrency 10 --duration 10 --users 5
    python bench/rest.py --concurrency 50 --rate 400      # paced: 400 requests/s in total
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Shared with the fan-out benchmark (same folder: `python bench/rest.py` puts it on the path).
from fanout import (
    free_port,
    fxgate_command,
    machine_busy_secs,
    pin,
    proc_cpu_secs,
)
from fxdaemon import BenchDaemon, add_daemon_arguments

API = "/api/v1"

#: Seed 003's response-time targets, in ms, checked against each group's p99.
TARGETS_MS = {"auth": 200.0, "trading": 100.0, "market": 50.0, "portfolio": 300.0}
GROUP_NAMES = {
    "auth": "authentication",
    "trading": "trading operations",
    "market": "market data",
    "portfolio": "portfolio data",
}

#: endpoint key -> (group, label). Positions count as portfolio data (what you hold);
#: placing, cancelling, closing and listing orders are trading operations.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "login": ("auth", "POST /auth/login"),
    "refresh": ("auth", "POST /auth/refresh"),
    "me": ("auth", "GET /auth/me"),
    "market_order": ("trading", "POST /trading/orders (market)"),
    "close_position": ("trading", "DELETE /trading/positions/:id"),
    "limit_order": ("trading", "POST /trading/orders (limit)"),
    "cancel_order": ("trading", "DELETE /trading/orders/:id"),
    "orders": ("trading", "GET /trading/orders"),
    "positions": ("portfolio", "GET /trading/positions"),
    "portfolio": ("portfolio", "GET /trading/portfolio"),
    "candles": ("market", "GET /market/data"),
    "symbols": ("market", "GET /market/symbols"),
}

#: Relative weight of each request a client picks next (logins are paced apart, by
#: --login-rate). An order is placed only while the client holds fewer than
#: MAX_OPEN of that kind, and a close or cancel needs something to close or cancel.
DEFAULT_MIX = {
    "refresh": 2,
    "me": 7,
    "market_order": 7,
    "close_position": 7,
    "limit_order": 5,
    "cancel_order": 5,
    "orders": 10,
    "positions": 10,
    "portfolio": 10,
    "candles": 27,
    "symbols": 10,
}
MAX_OPEN = 2

#: Charted symbols, with a plausible price for the seeded history.
CHART_SYMBOLS = {"EURUSD": 1.085, "GBPUSD": 1.27, "XAUUSD": 2000.0}
HISTORY_BARS = 300
TRADE_SYMBOL = "EURUSD"
TRADE_BID, TRADE_ASK = 1.085, 1.08502  # set with POST /paper/quotes before each run
LOT = 0.01

#: The limits the daemon enforces that a benchmark from one address would trip.
RAISED_LIMITS = {
    "FXGATE_SERVER_RATE_LIMIT_PER_MINUTE": "1000000",  # 100 requests/min per user
    "FXGATE_AUTH_LOGIN_ATTEMPTS_PER_MINUTE": "1000000",  # 10 logins/min per email+address
    "FXGATE_TIERS": '{"free": {"api_calls_per_day": 0}}',  # the daily REST quota per tier
}
GENERATOR_CPU_WARN = 80.0


def password_of(j: int) -> str:
    return f"bench-password-{j:04d}"


def email_of(j: int) -> str:
    return f"bench-{j:04d}@example.com"


# -- the state folder ------------------------------------------------------------------


def make_template(args: argparse.Namespace) -> Path:
    """A state folder with N traders (``fxgate users add``) and chart history, copied
    into each run's fresh state folder."""
    folder = Path(tempfile.mkdtemp(prefix="fxgate-rest-template-"))
    env = {**os.environ, "FXGATE_STATE_DIR": str(folder), "FXGATE_LOG_LEVEL": "warning"}
    cmd = fxgate_command(args.fxgate)

    def add(j: int) -> None:
        out = subprocess.run(
            [
                *cmd,
                *("users", "add", "--email", email_of(j), "--name", f"Bench {j}"),
                *("--role", "trader", "--password-stdin"),
            ],
            input=password_of(j) + "\n",
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"fxgate users add failed:\n{out.stderr}")

    began = time.monotonic()
    try:
        add(0)  # creates the schema; the rest two at a time
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(add, range(1, args.users)))
        asyncio.run(seed_history(folder))
        if args.history:
            asyncio.run(seed_trades(folder, args.history))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    print(
        f"rest: {args.users} users, {args.history} past trades each, and {HISTORY_BARS} 1m "
        f"bars for {', '.join(CHART_SYMBOLS)} in {time.monotonic() - began:.1f} s",
        file=sys.stderr,
    )
    return folder


async def seed_history(folder: Path) -> None:
    """Closed 1m bars ending a few minutes ago, so /market/data returns a full chart."""
    from fxgate.services.ports.store.records import Candle
    from fxgate.store.sqlite import SQLiteStore

    store = SQLiteStore.in_state_dir(folder)
    await store.open()
    try:
        rng = random.Random(1)
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
        bars = []
        for symbol, price in CHART_SYMBOLS.items():
            digits = 2 if price > 100 else 5
            for i in range(HISTORY_BARS, 0, -1):
                move = [price * (1 + rng.gauss(0, 0.0002)) for _ in range(4)]
                o, c = price, move[-1]
                h, lo = max(o, c, *move), min(o, c, *move)
                bars.append(
                    Candle(
                        symbol,
                        "1m",
                        end - timedelta(minutes=i),
                        *(f"{v:.{digits}f}" for v in (o, h, lo, c)),
                        str(rng.randint(20, 120)),
                    )
                )
                price = c
        await store.candles.upsert(bars)
    finally:
        await store.close()


async def seed_trades(folder: Path, trades: int) -> None:
    """``trades`` closed EURUSD trades per user over the last 90 days: for each, the
    opening and closing market orders and their in and out deals, as the paper broker
    stores them (tickets below the broker's first block, so no new ticket collides)."""
    from decimal import Decimal

    from fxgate.domain.trading import (
        Deal,
        DealEntry,
        Order,
        OrderStatus,
        OrderType,
        Side,
        order_id_for,
    )
    from fxgate.store.sqlite import SQLiteStore

    store = SQLiteStore.in_state_dir(folder)
    await store.open()
    try:
        users, total = await store.users.page(limit=500)
        while len(users) < total:
            more, _ = await store.users.page(offset=len(users), limit=500)
            users += more
        rng = random.Random(2)
        ticket = 1
        end = time.time() - 3600
        for user in users:
            if user.role != "trader":
                continue
            orders, deals = [], []
            for i in range(trades):
                opened = end - 90 * 86400 * (trades - i) / trades
                closed = opened + rng.uniform(60, 3600)
                side = Side.BUY if i % 2 == 0 else Side.SELL
                price = Decimal(f"{1.085 + rng.gauss(0, 0.005):.5f}")
                exit_ = price + Decimal(f"{rng.gauss(0, 0.001):.5f}")
                sign = 1 if side is Side.BUY else -1
                profit = round(sign * (exit_ - price) * 1000, 2)  # 0.01 lot of 100,000
                pos = ticket
                for entry, at, px, pnl, s in (
                    (DealEntry.IN, opened, price, Decimal(0), side),
                    (DealEntry.OUT, closed, exit_, profit, side.opposite),
                ):
                    common = {"symbol": TRADE_SYMBOL, "side": s, "volume": Decimal(str(LOT))}
                    orders.append(
                        Order(
                            id=order_id_for(ticket),
                            ticket=ticket,
                            user_id=user.id,
                            type=OrderType.MARKET,
                            created_at=at,
                            updated_at=at,
                            status=OrderStatus.FILLED,
                            filled_volume=common["volume"],
                            average_price=px,
                            filled_at=at,
                            position_ticket=pos,
                            **common,
                        )
                    )
                    deals.append(
                        Deal(
                            ticket=ticket + 1,
                            order_ticket=ticket,
                            position_ticket=pos,
                            user_id=user.id,
                            entry=entry,
                            price=px,
                            time=at,
                            profit=pnl,
                            **common,
                        )
                    )
                    ticket += 2
            await store.trading.save(orders=orders, deals=deals)
    finally:
        await store.close()


# -- the daemon --------------------------------------------------------------------------


def make_daemon(args: argparse.Namespace, template: Path, pinned: bool) -> BenchDaemon:
    env = dict(os.environ)
    env.update(
        FXGATE_LOG_LEVEL="warning",
        FXGATE_PAPER_SEED="1",
        FXGATE_SERVER_SHUTDOWN_GRACE="0",
        **RAISED_LIMITS,
    )
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    return BenchDaemon(
        cmd=fxgate_command(args.fxgate),
        env=env,
        port=args.port or free_port(),
        pin=pin(0, pinned),
        start_timeout=args.start_timeout,
        keep_state=args.keep_state,
        prefix="fxgate-rest-",
        template=template,
    )


# -- a lean HTTP/1.1 keep-alive client -----------------------------------------------------


class HttpConn:
    """One keep-alive connection; one request at a time. Lean on purpose: the load
    generator must not be what limits the numbers (its CPU is in every report)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._request(method, path, token, body), self.timeout)
        except BaseException:
            self.close()  # the connection's state is unknown: a new one next time
            raise

    async def _request(
        self, method: str, path: str, token: str | None, body: Any
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        payload = b""
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            data = await self._chunked()
        elif length is not None:
            data = await self.reader.readexactly(length)
        elif status in (204, 304):
            data = b""
        else:
            data, close = await self.reader.read(), True
        if close:
            self.close()
        return status, data

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# -- the load ----------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    window: tuple[float, float] = (0.0, 0.0)

    def record(self, key: str, began: float, ms: float, error: str | None) -> None:
        t0, t1 = self.window
        if not t0 <= began < t1:
            return  # warm-up, or after the window
        self.latencies.setdefault(key, []).append(ms)
        if error is not None:
            self.errors.setdefault(key, Counter())[error] += 1


class LoginClock:
    """Logins at a fixed overall rate, whichever client is free when one is due."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else math.inf
        self.next = time.monotonic() + self.interval

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = max(self.next + self.interval, now)
        return True


class Client:
    def __init__(
        self,
        index: int,
        user: int,
        conn: HttpConn,
        stats: Stats,
        mix: dict[str, float],
        logins: LoginClock,
        rng: random.Random,
    ) -> None:
        self.index = index
        self.email, self.password = email_of(user), password_of(user)
        self.conn = conn
        self.stats = stats
        self.mix = mix
        self.logins = logins
        self.rng = rng
        self.token = ""
        self.refresh_token = ""
        self.positions: list[int] = []
        self.pending: list[str] = []
        self.buy = index % 2 == 0
        self.last_error: str | None = None

    async def call(
        self, key: str, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> Any:
        """One timed request; the parsed ``data`` of a 2xx answer, else None."""
        began = time.monotonic()
        error: str | None = None
        data = None
        try:
            status, raw = await self.conn.request(
                method, API + path, self.token if auth else None, body
            )
            if 200 <= status < 300:
                if key in ("login", "refresh", "market_order", "limit_order"):
                    data = json.loads(raw)["data"]
            else:
                error = f"{status} {_error_code(raw)}"
        except TimeoutError:
            error = "timeout"
        except Exception as exc:  # refused, reset, a broken answer: all errors
            error = type(exc).__name__
        ms = (time.monotonic() - began) * 1000
        self.stats.record(key, began, ms, error)
        self.last_error = error
        return data if error is None else None

    async def login(self) -> bool:
        data = await self.call(
            "login",
            "POST",
            "/auth/login",
            {"email": self.email, "password": self.password},
            auth=False,
        )
        if data:
            self.token, self.refresh_token = data["accessToken"], data["refreshToken"]
        return bool(data)

    def choose(self) -> str:
        eligible = {
            "market_order": len(self.positions) < MAX_OPEN,
            "close_position": bool(self.positions),
            "limit_order": len(self.pending) < MAX_OPEN,
            "cancel_order": bool(self.pending),
        }
        keys = [k for k in self.mix if eligible.get(k, True)]
        return self.rng.choices(keys, weights=[self.mix[k] for k in keys])[0]

    async def step(self) -> None:
        if self.logins.due():
            await self.login()
            return
        key = self.choose()
        if key == "refresh":
            data = await self.call(
                key, "POST", "/auth/refresh", {"refreshToken": self.refresh_token}, auth=False
            )
            if data:
                self.token, self.refresh_token = data["accessToken"], data["refreshToken"]
        elif key == "me":
            await self.call(key, "GET", "/auth/me")
        elif key == "market_order":
            side = "buy" if self.buy else "sell"
            self.buy = not self.buy
            body = {"symbol": TRADE_SYMBOL, "type": "market", "side": side, "quantity": LOT}
            data = await self.call(key, "POST", "/trading/orders", body)
            if data and data.get("positionTicket"):
                self.positions.append(int(data["positionTicket"]))
        elif key == "close_position":
            await self.call(key, "DELETE", f"/trading/positions/{self.positions.pop(0)}")
        elif key == "limit_order":
            side = "buy" if self.rng.random() < 0.5 else "sell"
            price = round(TRADE_BID * 0.9, 5) if side == "buy" else round(TRADE_ASK * 1.1, 5)
            body = {
                "symbol": TRADE_SYMBOL,
                "type": "limit",
                "side": side,
                "quantity": LOT,
                "price": price,
            }
            data = await self.call(key, "POST", "/trading/orders", body)
            if data:
                self.pending.append(data["id"])
        elif key == "cancel_order":
            await self.call(key, "DELETE", f"/trading/orders/{self.pending.pop(0)}")
        elif key == "orders":
            await self.call(key, "GET", "/trading/orders")
        elif key == "positions":
            await self.call(key, "GET", "/trading/positions")
        elif key == "portfolio":
            await self.call(key, "GET", "/trading/portfolio")
        elif key == "candles":
            symbol = self.rng.choice(list(CHART_SYMBOLS))
            await self.call(key, "GET", f"/market/data?symbol={symbol}&interval=1m&limit=100")
        elif key == "symbols":
            await self.call(key, "GET", "/market/symbols")

    async def run(self, until: float, interval: float) -> None:
        """Requests back to back (interval 0), or one per ``interval`` seconds."""
        next_at = time.monotonic() + self.rng.random() * interval
        while True:
            now = time.monotonic()
            if interval:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                next_at = max(next_at + interval, time.monotonic())
            if time.monotonic() >= until:
                return
            await self.step()


def _error_code(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "(no envelope)"


@dataclass
class Run:
    concurrency: int
    duration: float
    rate: float
    login_rate: float
    stats: Stats = field(default_factory=Stats)
    server_cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0
    window_secs: float = 0.0
    server_tracebacks: int = 0
    failed: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per group (key ``*``) and per endpoint, in table order."""
        out = []
        for group in TARGETS_MS:
            keys = [k for k, (g, _) in ENDPOINTS.items() if g == group]
            merged = [ms for k in keys for ms in self.stats.latencies.get(k, [])]
            errors = sum(sum(self.stats.errors.get(k, Counter()).values()) for k in keys)
            out.append(self._row(group, "*", merged, errors))
            for k in keys:
                lat = self.stats.latencies.get(k, [])
                err = sum(self.stats.errors.get(k, Counter()).values())
                out.append(self._row(group, k, lat, err))
        return out

    def _row(self, group: str, key: str, lat: list[float], errors: int) -> dict[str, Any]:
        lat = sorted(lat)
        target = TARGETS_MS[group]
        p99 = percentile(lat, 0.99)
        return {
            "group": group,
            "endpoint": key,
            "label": GROUP_NAMES[group] if key == "*" else ENDPOINTS[key][1],
            "requests": len(lat),
            "rps": len(lat) / self.window_secs if self.window_secs else 0.0,
            "p50_ms": percentile(lat, 0.50),
            "p99_ms": p99,
            "max_ms": lat[-1] if lat else 0.0,
            "errors": errors,
            "target_ms": target,
            "met": bool(lat) and p99 < target,
        }

    def check(self) -> list[str]:
        failed = []
        for row in self.rows():
            if row["endpoint"] != "*":
                continue
            if not row["requests"]:
                failed.append(f"{row['label']}: no request measured")
            elif not row["met"]:
                failed.append(
                    f"{row['label']}: p99 {row['p99_ms']:.1f} ms >= {row['target_ms']:.0f} ms"
                )
        for key, counts in sorted(self.stats.errors.items()):
            detail = ", ".join(f"{n}x {what}" for what, n in counts.most_common())
            failed.append(f"{ENDPOINTS[key][1]}: errors: {detail}")
        if self.client_cpu_pct > GENERATOR_CPU_WARN:
            failed.append(
                f"load generator at {self.client_cpu_pct:.0f}% CPU: it may be the bottleneck"
            )
        if self.server_tracebacks:
            failed.append(f"{self.server_tracebacks} tracebacks in the daemon's log")
        self.failed = failed
        return failed


def percentile(ordered: list[float], q: float) -> float:
    """Nearest rank on a sorted list (0 when empty)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def drive(args: argparse.Namespace, run: Run, daemon: BenchDaemon, admin: str) -> None:
    admin_conn = HttpConn(daemon.port, args.timeout)
    status, raw = await admin_conn.request(
        "POST",
        f"{API}/paper/quotes",
        admin,
        {"symbol": TRADE_SYMBOL, "bid": TRADE_BID, "ask": TRADE_ASK},
    )
    admin_conn.close()
    if status != 200:
        raise RuntimeError(f"POST /paper/quotes answered {status}: {raw[:300]!r}")

    stats = run.stats
    logins = LoginClock(args.login_rate)
    mix = args.mix
    clients = [
        Client(
            i,
            i % args.users,
            HttpConn(daemon.port, args.timeout),
            stats,
            mix,
            logins,
            random.Random(args.seed * 100_003 + i),
        )
        for i in range(run.concurrency)
    ]
    # Every client logs in first (its own session), outside the window.
    stats.window = (math.inf, math.inf)
    began = time.monotonic()
    ok = await asyncio.gather(*(c.login() for c in clients))
    if not all(ok):
        why = Counter(c.last_error for c, good in zip(clients, ok, strict=True) if not good)
        raise RuntimeError(
            f"{ok.count(False)} of {len(ok)} clients could not log in: "
            + ", ".join(f"{n}x {what}" for what, n in why.most_common())
        )
    print(
        f"   {len(clients)} clients logged in in {time.monotonic() - began:.1f} s",
        file=sys.stderr,
    )
    logins.next = time.monotonic() + logins.interval
    t0 = time.monotonic() + args.warmup
    t1 = t0 + args.duration
    stats.window = (t0, t1)
    interval = run.concurrency / args.rate if args.rate else 0.0

    profiler: list[subprocess.Popen[bytes]] = []

    async def sample() -> None:
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        a = (time.monotonic(), proc_cpu_secs(daemon.pid), own_cpu_secs(), machine_busy_secs())
        if args.profile:
            profiler.append(start_profiler(args, daemon.pid, run.concurrency))
        await asyncio.sleep(max(0.0, t1 - time.monotonic()))
        b = (time.monotonic(), proc_cpu_secs(daemon.pid), own_cpu_secs(), machine_busy_secs())
        wall = max(b[0] - a[0], 1e-9)
        run.window_secs = wall
        run.server_cpu_pct = 100 * (b[1] - a[1]) / wall
        run.client_cpu_pct = 100 * (b[2] - a[2]) / wall
        busy = 100 * (b[3] - a[3]) / wall
        run.other_cpu_pct = max(0.0, busy - run.server_cpu_pct - run.client_cpu_pct)

    await asyncio.gather(sample(), *(c.run(t1, interval) for c in clients))
    for c in clients:
        c.conn.close()
    for prof in profiler:
        await asyncio.to_thread(prof.wait, 30)


def own_cpu_secs() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def start_profiler(args: argparse.Namespace, pid: int, concurrency: int) -> subprocess.Popen[bytes]:
    args.profile.mkdir(parents=True, exist_ok=True)
    out = args.profile / f"rest-c{concurrency}.txt"
    cmd = ["py-spy", "record", "--format", "raw", "-r", "100", "--threads", *args.profile_flags]
    cmd += ["-p", str(pid)]
    cmd += ["-d", str(max(1, int(args.duration) - 1)), "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, top: int = 25) -> str:
    """Busy samples per thread, then self and inclusive shares per function, from py-spy's
    folded stacks (``--threads``); idle pool threads waiting for work are left out."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames or not count.isdigit():
            continue
        if frames[-1].startswith("_worker (concurrent/futures/thread.py"):
            continue  # an idle pool thread, blocked on its queue
        n = int(count)
        threads[frames[0].split(": ")[-1]] += n
        own[frames[-1]] += n
        for frame in set(frames[1:]):
            incl[frame] += n
    total = sum(threads.values()) or 1
    out = [f"{path.name}: {total} busy samples"]
    out += [f"  {100 * n / total:5.1f}  thread {name}" for name, n in threads.most_common()]
    out.append("  self %  function")
    out += [f"  {100 * n / total:5.1f}  {f}" for f, n in own.most_common(top)]
    out.append("  incl %  function")
    out += [f"  {100 * n / total:5.1f}  {f}" for f, n in incl.most_common(top * 2)]
    return "\n".join(out)


def run_once(args: argparse.Namespace, concurrency: int, template: Path, pinned: bool) -> Run:
    run = Run(concurrency, args.duration, args.rate, args.login_rate)
    daemon = make_daemon(args, template, pinned)
    pace = f"{args.rate:g} requests/s in total" if args.rate else "closed loop"
    print(f"\n== C={concurrency} ({pace})  port {daemon.port}", file=sys.stderr)
    try:
        daemon.start()
        admin = daemon.issue_token("bench-admin", "--role", "admin")
        if pinned:
            os.sched_setaffinity(0, {1})
        asyncio.run(drive(args, run, daemon, admin))
    finally:
        rc = daemon.stop()
        run.server_tracebacks = daemon.tracebacks()
        if rc not in (None, 0, -signal.SIGTERM):
            print(f"   daemon exited with {rc} after SIGTERM:\n{daemon.tail()}", file=sys.stderr)
        daemon.cleanup()
    run.check()
    total = sum(len(v) for v in run.stats.latencies.values())
    print(
        f"   {total:,} requests in {run.window_secs:.1f} s, daemon CPU {run.server_cpu_pct:.0f}%,"
        f" generator CPU {run.client_cpu_pct:.0f}%, other load {run.other_cpu_pct:.0f}%",
        file=sys.stderr,
    )
    return run


# -- the report ------------------------------------------------------------------------------

HEADER = (
    "| group | endpoint | requests | req/s | p50 ms | p99 ms | max ms | errors "
    "| target (p99) | met |"
)


def print_run(run: Run) -> None:
    total = sum(len(v) for v in run.stats.latencies.values())
    pace = f"paced at {run.rate:g} req/s" if run.rate else "closed loop"
    print(
        f"\nC={run.concurrency} clients, {pace}, logins {run.login_rate:g}/s: "
        f"{total:,} requests in {run.window_secs:.1f} s ({total / max(run.window_secs, 1e-9):,.0f}"
        f"/s); daemon CPU {run.server_cpu_pct:.0f}%, load generator CPU "
        f"{run.client_cpu_pct:.0f}%, other load {run.other_cpu_pct:.0f}%"
    )
    print()
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for row in run.rows():
        whole = row["endpoint"] == "*"
        label = f"**{row['label']}**" if whole else row["label"]
        target = f"< {row['target_ms']:.0f} ms" if whole else ""
        met = ("pass" if row["met"] else "FAIL") if row["requests"] else "-"
        print(
            f"| {row['group'] if whole else ''} | {label} | {row['requests']:,} "
            f"| {row['rps']:,.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} "
            f"| {row['max_ms']:.1f} | {row['errors']} | {target} | {met} |"
        )
    print()
    if run.failed:
        print(f"C={run.concurrency}: not met:")
        for item in run.failed:
            print(f"  - {item}")
    else:
        print(f"C={run.concurrency}: all targets met, no errors.")
    if run.other_cpu_pct > 20:
        print(
            "Note: other processes used the CPU during the window ('other load'): "
            "the numbers are provisional."
        )


def print_summary(runs: list[Run]) -> None:
    if len(runs) < 2:
        return
    head = "| C | req/s |" + "".join(f" {GROUP_NAMES[g]} p99 ms |" for g in TARGETS_MS)
    head += " errors | daemon CPU % | generator CPU % |"
    print(
        "\nSummary (p99 against the targets: "
        + ", ".join(f"{GROUP_NAMES[g]} < {t:.0f} ms" for g, t in TARGETS_MS.items())
        + ")\n"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for run in runs:
        rows = {r["group"]: r for r in run.rows() if r["endpoint"] == "*"}
        total = sum(r["requests"] for r in rows.values())
        errors = sum(r["errors"] for r in rows.values())
        cells = "".join(
            f" {rows[g]['p99_ms']:.1f}{'' if rows[g]['met'] else ' ✗'} |" for g in TARGETS_MS
        )
        print(
            f"| {run.concurrency} | {total / max(run.window_secs, 1e-9):,.0f} |{cells} {errors} "
            f"| {run.server_cpu_pct:.0f} | {run.client_cpu_pct:.0f} |"
        )


# -- the command ------------------------------------------------------------------------------


def parse_mix(text: str) -> dict[str, float]:
    mix = dict(DEFAULT_MIX)
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, _, value = item.partition("=")
        if key not in DEFAULT_MIX:
            raise argparse.ArgumentTypeError(
                f"unknown request {key!r}; known: {', '.join(DEFAULT_MIX)}"
            )
        mix[key] = float(value)
    if not any(mix.values()):
        raise argparse.ArgumentTypeError("every weight is 0")
    return {k: v for k, v in mix.items() if v > 0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--concurrency",
        default=[10, 50],
        type=lambda s: [int(x) for x in s.split(",") if x],
        help="comma-separated numbers of concurrent clients, one run each (default 10,50)",
    )
    p.add_argument("--users", type=int, default=20, help="trader accounts (default 20)")
    p.add_argument(
        "--history",
        type=int,
        default=0,
        help="closed trades each user has before the run (2 orders and 2 deals each; "
        "default 0: new accounts)",
    )
    p.add_argument("--duration", type=float, default=20, help="measured seconds (default 20)")
    p.add_argument("--warmup", type=float, default=3, help="seconds before the window (default 3)")
    p.add_argument(
        "--rate",
        type=float,
        default=0,
        help="requests/s in total, spread over the clients (default 0: each client sends its "
        "next request as soon as the last one is answered)",
    )
    p.add_argument(
        "--login-rate",
        type=float,
        default=1.0,
        help="password logins per second in total during the window (default 1; each costs "
        "an argon2 verification)",
    )
    p.add_argument(
        "--mix",
        type=parse_mix,
        default=dict(DEFAULT_MIX),
        help="weights of the other requests, e.g. 'candles=50,portfolio=0' (defaults: "
        + ", ".join(f"{k}={v}" for k, v in DEFAULT_MIX.items())
        + ")",
    )
    p.add_argument("--timeout", type=float, default=30, help="seconds before a request fails")
    p.add_argument("--seed", type=int, default=1, help="seeds the clients' choices")
    p.add_argument(
        "--profile-flags",
        type=lambda s: s.split(),
        default=[],
        help="extra py-spy record flags, e.g. '--gil' (only what holds the GIL)",
    )
    add_daemon_arguments(p)
    p.add_argument("--json", type=Path, default=None, help="also write every run to this file")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed or a request failed"
    )
    args = p.parse_args(argv)
    if args.users < 1 or min(args.concurrency, default=0) < 1:
        p.error("--users and --concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = os.cpu_count() or 1
    pinned = not args.no_pin and cores >= 2 and shutil.which("taskset") is not None
    if not pinned:
        print("rest: not pinning (needs taskset and >= 2 cores)", file=sys.stderr)
    print(
        "rest: limits raised for the benchmark (one address, a few users): "
        + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items()),
        file=sys.stderr,
    )
    runs: list[Run] = []
    template: Path | None = None
    try:
        template = make_template(args)
        for concurrency in args.concurrency:
            runs.append(run_once(args, concurrency, template, pinned))
    except RuntimeError as exc:
        print(f"rest: {exc}", file=sys.stderr)
        return 2
    finally:
        if template is not None:
            shutil.rmtree(template, ignore_errors=True)
        if args.json and runs:
            args.json.write_text(json.dumps([run_json(r) for r in runs], indent=2))
    print(
        "\nLimits raised for the benchmark: "
        + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items())
        + f"; {args.users} users; "
        + ("daemon on core 0, load generator on core 1." if pinned else "not pinned.")
    )
    for run in runs:
        print_run(run)
    print_summary(runs)
    if args.profile:
        for prof in sorted(args.profile.glob("rest-*.txt")):
            print(summarize_profile(prof))
    failed = any(r.failed for r in runs)
    return 1 if (failed and args.strict) else 0


def run_json(run: Run) -> dict[str, Any]:
    return {
        "concurrency": run.concurrency,
        "duration": run.duration,
        "window_secs": run.window_secs,
        "rate": run.rate,
        "login_rate": run.login_rate,
        "server_cpu_pct": run.server_cpu_pct,
        "client_cpu_pct": run.client_cpu_pct,
        "other_cpu_pct": run.other_cpu_pct,
        "server_tracebacks": run.server_tracebacks,
        "rows": run.rows(),
        "errors": {k: dict(v) for k, v in run.stats.errors.items()},
        "not_met": run.failed,
    }


if __name__ == "__main__":
    sys.exit(main())
