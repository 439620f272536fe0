"""The HTTP listener against slow, oversized and conflicting clients (issue 6).

A slowloris trickling headers, or a socket that never says anything, is dropped after
``server.header_timeout``; headers beyond ``server.max_header_size`` get a 431 instead
of a silent reset; and ``fxgate serve`` on a port in use says so in one line, exit 2,
before it creates any state.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Daemon, Daemons, free_port

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def strict(module_daemons: Daemons) -> Daemon:
    return module_daemons(
        FXGATE_SERVER_HEADER_TIMEOUT=str(TIMEOUT), FXGATE_SERVER_MAX_HEADER_SIZE="8192"
    )


def closed_within(s: socket.socket, seconds: float, trickle: bytes | None = None) -> float | None:
    """Seconds until the server closed ``s`` (None if still open after ``seconds``),
    sending ``trickle`` every 0.2 s meanwhile."""
    start = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if s.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except ConnectionResetError:
            return time.monotonic() - start
        if trickle is not None:
            try:
                s.sendall(trickle)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start
    return None


def test_slow_headers_and_silent_sockets_are_dropped_after_the_header_timeout(
    strict: Daemon,
) -> None:
    trickling = []
    silent = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", strict.port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        trickling.append(s)
        silent.append(socket.create_connection(("127.0.0.1", strict.port)))
    try:
        for s in trickling:
            took = closed_within(s, TIMEOUT + 4, trickle=b"X-Slow: 1\r\n")
            assert took is not None, "a slowloris connection stayed open"
        for s in silent:
            assert closed_within(s, TIMEOUT + 4) is not None, "an idle connection stayed open"
        # The daemon still serves everyone else.
        assert httpx.get(strict.url("/health"), timeout=5).status_code == 200
    finally:
        for s in trickling + silent:
            s.close()


def test_a_request_slower_than_the_timeout_overall_but_complete_in_time_is_served(
    strict: Daemon,
) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n")
        time.sleep(TIMEOUT / 4)
        s.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")


def test_oversized_headers_get_431_not_a_silent_close(strict: Daemon) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:100]
    assert b'"code":"VALIDATION_ERROR"' in reply
    # Headers within the limit are fine.
    r = httpx.get(strict.url("/health"), headers={"X-Fine": "a" * 4000}, timeout=5)
    assert r.status_code == 200


def test_serve_on_a_port_in_use_says_so_in_one_line_and_creates_nothing(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        d = Daemon(state)
        out = subprocess.run(
            [sys.executable, "-m", "fxgate", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=d.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert str(port) in lines[0], lines
    assert "cannot" in lines[0], lines
    assert not (state / "master.key").exists()
    assert not state.exists() or not any(state.iterdir()), list(state.iterdir())
