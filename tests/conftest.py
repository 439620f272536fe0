"""Fixtures: real daemons on free ports, with real SQLite state directories.

Which daemon a test gets (all are ``fxgate serve`` subprocesses, see :class:`Daemon`):

- ``daemon`` (session): default limits, a ticking paper market (5 ticks/s per symbol),
  and the test plugin ``tests.plugins.ticker`` found through the ``fxgate.plugins``
  entry-point group, exactly as a pip-installed third-party plugin would be found: a
  ``*.dist-info`` folder on ``PYTHONPATH`` declares it.
- ``market`` (session): a quiet paper market (:data:`QUIET`) whose prices move only
  when a test sets them, for the trading tests. A module that needs other account terms
  overrides ``market`` with a module fixture built on ``module_daemons``.
- ``make_daemon`` (per test) and ``module_daemons`` (per module): factories for a daemon
  with settings of its own: ``make_daemon(FXGATE_WS_AUTH_TIMEOUT="0.5")`` starts one,
  ``make_daemon.new(state_dir)`` makes one to start (and restart) by hand. Whatever a
  factory made is stopped when its scope ends, and a failing test's report carries the
  log of every daemon it used.
- ``fresh_daemon`` (per test): a default daemon, not started, for restarts and shutdown.

Waiting: never a fixed sleep. Wait for a message (``Client.type``, ``wait_for``), for a
ping's answer (``Client.barrier``: everything sent before it has arrived), or poll a
condition with a deadline (:func:`until`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent

#: A paper market that does not move by itself: one tick per symbol every ~3 hours on
#: average (and with the fixed seed the first tick times are always the same), so every
#: price a test sees is one it set through ``POST /paper/quotes``; and no REST rate limit
#: in the way of a test that places many orders.
QUIET = {
    "FXGATE_PAPER_TICK_RATE": "0.0001",
    "FXGATE_SERVER_RATE_LIMIT_PER_MINUTE": "100000",
}
#: ``FXGATE_PLUGINS`` naming the test plugin (the shared ``daemon`` finds it by entry point).
TICKER_PLUGINS = '["tests.plugins.ticker"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from sync or async test code alike."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def make_entry_point_dist(where: Path, module: str) -> Path:
    dist = where / "fxgate_test_ticker-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fxgate-test-ticker\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[fxgate.plugins]\ntest-ticker = {module}\n")
    return where


class Daemon:
    """``fxgate serve`` in a subprocess, as an operator would run it."""

    def __init__(
        self, state_dir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.extra_env = env or {}
        #: More ``fxgate serve`` arguments (``--demo``).
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = state_dir / "daemon.log"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FXGATE_")}
        env.update(
            {
                "FXGATE_STATE_DIR": str(self.state_dir),
                "FXGATE_PAPER_SEED": "7",
                "FXGATE_PAPER_TICK_RATE": "5",
                "FXGATE_LOG_LEVEL": "info",
                "FXGATE_AUTH_KEYRING_REFRESH": "0.5",
                "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
                    os.pathsep
                ),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 20) -> Daemon:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fxgate",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *self.args,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.state_dir,
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1) as http:  # one client: each new one costs an SSL context
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(self.url("/health")).status_code == 200:
                        return self
                time.sleep(0.05)
        raise RuntimeError(f"daemon not healthy after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str = "/api/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fxgate", *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=60,
            cwd=self.state_dir,
        )

    def token(
        self,
        user: str,
        role: str = "trader",
        *,
        ttl: int | None = None,
        tier: str = "pro",
    ) -> str:
        """A token signed with the daemon's current key, issued in-process (fast)."""
        return str(run_sync(_issue(self.state_dir, user, role, ttl, tier)))

    def sign(self, claims: dict[str, Any]) -> str:
        """Any claims, signed with the daemon's active key: a token fxgate would never
        issue, to prove the checks after the signature."""
        return str(run_sync(_sign(self.state_dir, claims)))


async def _issue(state_dir: Path, user: str, role: str, ttl: int | None, tier: str) -> str:
    from fxgate.domain.roles import Role
    from fxgate.services.auth.keyring import KeyRing
    from fxgate.services.auth.sealing import Sealer, master_key_path
    from fxgate.services.auth.tokens import TokenService
    from fxgate.store.factory import build_store

    store = build_store("sqlite", state_dir=state_dir, mongodb_uri=None, mongodb_database="x")
    await store.open()
    try:
        if await store.users.get(user) is None:
            await store.users.create(
                user_id=user, email=f"{user}@test.invalid", name=user, role=role, tier=tier
            )
        # The daemon's default master key file: <state_dir>/master.key.
        ring = KeyRing(store.signing_keys, sealer=Sealer(master_key_path("", state_dir)))
        await ring.ensure_active()
        token, _ = TokenService(ring).issue(user, Role(role), tier=tier, ttl=ttl)
        return token
    finally:
        await store.close()


async def _sign(state_dir: Path, claims: dict[str, Any]) -> str:
    import jwt

    from fxgate.services.auth.keyring import KeyRing
    from fxgate.services.auth.sealing import Sealer, master_key_path
    from fxgate.store.factory import build_store

    store = build_store("sqlite", state_dir=state_dir, mongodb_uri=None, mongodb_database="x")
    await store.open()
    try:
        ring = KeyRing(store.signing_keys, sealer=Sealer(master_key_path("", state_dir)))
        key = await ring.ensure_active()
        return jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.kid})
    finally:
        await store.close()


class Daemons:
    """A factory of daemons with settings of their own, each stopped when its owner
    (a test, a module, the session) is done: no test can leave a daemon running."""

    def __init__(self, mktemp: Callable[[str], Path]) -> None:
        self._mktemp = mktemp
        self.made: list[Daemon] = []

    def new(self, state_dir: Path | None = None, *, quiet: bool = False, **env: str) -> Daemon:
        """A daemon, not started: for tests that start, stop and restart it themselves
        (pass the same ``state_dir`` to a second one to restart on the same state).
        ``quiet``: the prices move only when the test sets them (:data:`QUIET`)."""
        d = Daemon(state_dir or self._mktemp("state"), env={**(QUIET if quiet else {}), **env})
        self.made.append(d)
        return d

    def start(self, state_dir: Path | None = None, *, quiet: bool = False, **env: str) -> Daemon:
        """A daemon with these ``FXGATE_…`` settings, started and healthy."""
        return self.new(state_dir, quiet=quiet, **env).start()

    __call__ = start

    def stop_all(self) -> None:
        for d in self.made:
            if d.proc is not None:
                d.stop(timeout=5)
        self.made.clear()


@contextlib.contextmanager
def _daemons(factory: pytest.TempPathFactory) -> Iterator[Daemons]:
    daemons = Daemons(lambda name: factory.mktemp(name))
    try:
        yield daemons
    finally:
        daemons.stop_all()


@pytest.fixture
def make_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemons]:
    """Daemons of one test's own: ``make_daemon(FXGATE_WS_PING_INTERVAL="0.3")``."""
    with _daemons(tmp_path_factory) as daemons:
        yield daemons


@pytest.fixture(scope="module")
def module_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemons]:
    """Daemons that every test of a module may share, for a module fixture such as
    ``market = module_daemons(quiet=True, FXGATE_PAPER_LEVERAGE="50")``."""
    with _daemons(tmp_path_factory) as daemons:
        yield daemons


@pytest.fixture(scope="session")
def session_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemons]:
    with _daemons(tmp_path_factory) as daemons:
        yield daemons


@pytest.fixture(scope="session")
def daemon(session_daemons: Daemons, tmp_path_factory: pytest.TempPathFactory) -> Daemon:
    """The shared daemon: default limits, the test plugin found by entry point."""
    eps = make_entry_point_dist(tmp_path_factory.mktemp("eps"), "tests.plugins.ticker")
    return session_daemons(PYTHONPATH=os.pathsep.join([str(ROOT), str(eps)]))


@pytest.fixture(scope="session")
def market(session_daemons: Daemons) -> Daemon:
    """The shared quiet market: the default account (10,000 USD at 1:100); prices move
    only when a test sets them, so each test sets the quotes it needs first. Tests use
    users of their own (``Trader.issued``), so none sees another's orders."""
    return session_daemons(quiet=True)


_ids = itertools.count(1)


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A fresh user id per test, so per-user limits never leak between tests."""
    return f"u{next(_ids)}_{request.node.name[:24]}".replace("[", "_").replace("]", "_")


@pytest.fixture
def fresh_daemon(make_daemon: Daemons, tmp_path: Path) -> Daemon:
    """A daemon of the test's own (for restarts, shutdown, limits), not started."""
    return make_daemon.new(tmp_path / "state")


# -- waiting -------------------------------------------------------------------------


async def until(
    cond: Callable[[], T | Awaitable[T | None] | None],
    timeout: float = 5,
    interval: float = 0.02,
    what: str = "",
) -> T:
    """Poll ``cond`` (sync or async) until it returns something true, and return that.

    For a state that no message announces (a file written, a count reached over REST);
    when a message does announce it, wait for the message instead. Fails after
    ``timeout`` seconds naming ``what`` and the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what or cond} (last: {value!r})")
        await asyncio.sleep(interval)


def until_sync(
    cond: Callable[[], T | None], timeout: float = 5, interval: float = 0.02, what: str = ""
) -> T:
    """:func:`until` for synchronous tests."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what or cond} (last: {value!r})")
        time.sleep(interval)


# -- a failing test's report shows the logs of the daemons it used ---------------------

_LOG_START = pytest.StashKey[dict[int, int]]()
_LOG_TAIL = 20_000


def _daemons_of(item: pytest.Item) -> list[Daemon]:
    found: dict[int, Daemon] = {}
    for value in getattr(item, "funcargs", {}).values():
        candidates = value.made if isinstance(value, Daemons) else [value]
        for d in candidates:
            d = getattr(d, "daemon", d)  # a Trader or an Admin names its daemon
            if isinstance(d, Daemon):
                found[id(d)] = d
    return list(found.values())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_LOG_START] = {
        id(d): d.log_path.stat().st_size for d in _daemons_of(item) if d.log_path.exists()
    }
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "call" and report.failed:
        starts = item.stash.get(_LOG_START, {})
        for d in _daemons_of(item):
            if not d.log_path.exists():
                continue
            with d.log_path.open("rb") as f:
                f.seek(starts.get(id(d), 0))
                text = f.read().decode(errors="replace")
            if len(text) > _LOG_TAIL:
                text = "…" + text[-_LOG_TAIL:]
            report.sections.append((f"daemon log (port {d.port}, {d.state_dir})", text))
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ``FXGATE_TEST_NO_SKIP=1`` (CI sets it) a skipped test fails the run: a
    missing tool (gcc, systemd-analyze) must not turn into a quietly green build."""
    if not os.environ.get("FXGATE_TEST_NO_SKIP") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        for report in skipped:
            print(f"\nnot allowed in CI: skipped {report.nodeid}: {report.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real ``redis-server`` for one test module (``tests/redis_fixtures.py``),
    killed when the module is done."""
    from tests.redis_fixtures import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()
