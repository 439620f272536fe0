"""Fixtures: a real daemon on a free port, with a real SQLite state directory.

The shared daemon loads the test plugin ``tests.plugins.ticker`` through the
``fxgate.plugins`` entry-point group, exactly as a pip-installed third-party plugin
would be found: a ``*.dist-info`` folder on ``PYTHONPATH`` declares it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


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

    def __init__(self, state_dir: Path, env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.extra_env = env or {}
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
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.state_dir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url("/health"), timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
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


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """The shared daemon: default limits, the test plugin found by entry point."""
    eps = make_entry_point_dist(tmp_path_factory.mktemp("eps"), "tests.plugins.ticker")
    d = Daemon(
        tmp_path_factory.mktemp("state"),
        env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(eps)])},
    )
    d.start()
    yield d
    d.stop()


_ids = itertools.count(1)


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A fresh user id per test, so per-user limits never leak between tests."""
    return f"u{next(_ids)}_{request.node.name[:24]}".replace("[", "_").replace("]", "_")


@pytest.fixture
def fresh_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon of the test's own (for restarts, shutdown, limits)."""
    d = Daemon(tmp_path / "state")
    yield d
    if d.proc is not None:
        d.stop(signal.SIGKILL)


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
