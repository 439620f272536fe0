"""One fxgate daemon for one benchmark run, shared by ``fanout.py`` and ``rest.py``.

A fresh state folder, the daemon started pinned (``taskset`` execs it, so the pid is the
daemon's own) with the folder as working directory (no ``./etc/fxgate.toml`` of the
caller's is read), ``/health`` awaited, tokens issued with the CLI against the same
state, SIGTERM to stop, and the log kept for the report.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


def add_daemon_arguments(p: argparse.ArgumentParser) -> None:
    """The options about the daemon itself, the same in every benchmark."""
    p.add_argument("--port", type=int, default=0, help="daemon port (0: a free one per run)")
    p.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the daemon")
    p.add_argument("--fxgate", default=None, help="command that runs fxgate (default: fxgate)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--start-timeout", type=float, default=60)
    p.add_argument("--keep-state", action="store_true", help="keep each run's state dir and log")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run py-spy on the daemon over each window; folded stacks go to this folder "
        "(profiled runs are slower: do not quote their numbers)",
    )


class BenchDaemon:
    def __init__(
        self,
        *,
        cmd: Sequence[str],
        env: Mapping[str, str],
        port: int,
        pin: Sequence[str] = (),
        serve_cmd: Sequence[str] | None = None,
        start_timeout: float = 60.0,
        keep_state: bool = False,
        prefix: str = "fxgate-bench-",
        template: Path | None = None,
    ) -> None:
        """``cmd`` runs the ``fxgate`` CLI, ``serve_cmd`` (default ``cmd``) the daemon;
        ``env`` is completed with ``FXGATE_STATE_DIR``; ``template``'s files are copied
        into the fresh state folder first."""
        self.state_dir = Path(tempfile.mkdtemp(prefix=prefix))
        if template is not None:
            for item in template.iterdir():
                if item.is_file():
                    shutil.copy2(item, self.state_dir / item.name)
        self.cmd = list(cmd)
        self.serve_cmd = list(serve_cmd if serve_cmd is not None else cmd)
        self.env = {**env, "FXGATE_STATE_DIR": str(self.state_dir)}
        self.port = port
        self.pin = list(pin)
        self.start_timeout = start_timeout
        self.keep_state = keep_state
        self.log_path = self.state_dir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        cmd = [*self.pin, *self.serve_cmd, "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=self.state_dir, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.start_timeout
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"/health did not answer 200 in {self.start_timeout} s:\n{self.tail()}")

    def issue_token(self, user: str, *extra: str) -> str:
        """``fxgate token issue --user USER --ttl 3600 EXTRA…`` against the daemon's state."""
        out = subprocess.run(
            [*self.cmd, "token", "issue", "--user", user, "--ttl", "3600", *extra],
            env=self.env,
            cwd=self.state_dir,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"fxgate token issue failed:\n{out.stderr}")
        return lines[-1]

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 15 s; None if it was not running any more."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9
        took = time.monotonic() - began
        if took > 5:
            print(f"   the daemon took {took:.1f} s to exit after SIGTERM", file=sys.stderr)
        return rc

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def tracebacks(self) -> int:
        try:
            return self.log_path.read_text(errors="replace").count("Traceback")
        except OSError:
            return 0

    def cleanup(self) -> None:
        if not self.keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)
