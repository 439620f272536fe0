"""A real ``redis-server`` for the Redis bus tests (``SCALE.md``: fakeredis's blocking
reads have regressed too often to trust), on a free loopback port, persistence off.

``.ci/run`` installs Debian's ``redis-server``; without it the fixture fails (a skip
would hide the Redis bus untested).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.conftest import free_port


class RedisServer:
    def __init__(self, workdir: Path, args: Sequence[str] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.args,
            ],
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}")
            if self.ping():
                return self
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer")

    def running(self) -> RedisServer:
        """The server, started again if a test before stopped it (the fixture is
        shared by a module's tests, and some kill it on purpose)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                # -NOAUTH: up, and asking for the password (requirepass).
                return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command in RESP, the raw reply (``CLIENT PAUSE``, ``DEBUG``...)."""
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            parts.append(f"${len(a.encode())}\r\n{a}\r\n".encode())
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"".join(parts))
            return s.recv(4096)

    def stop(self) -> None:
        """Kill it: with persistence off, everything it held is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart_empty(self) -> None:
        """Redis lost its data: killed and started again, empty, on the same port."""
        self.stop()
        self.start()


class SentinelSet:
    """A master, one replica and one ``redis-server --sentinel`` watching them (quorum
    1, down after 300 ms), on free loopback ports, all with ``password``: the smallest
    set where Sentinel fails over for real. ``url`` is fxgate's ``redis+sentinel://``."""

    SERVICE = "mymaster"

    def __init__(self, workdir: Path, password: str) -> None:
        self.workdir = workdir
        self.password = password
        auth = ["--requirepass", password, "--masterauth", password]
        auth += ["--repl-diskless-sync-delay", "0"]  # the replica in sync at once
        self.master = RedisServer(workdir / "a", auth)
        self.replica = RedisServer(
            workdir / "b", [*auth, "--replicaof", "127.0.0.1", str(self.master.port)]
        )
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://:{self.password}@127.0.0.1:{self.port}/{self.SERVICE}/0"

    def client(self, port: int) -> Any:
        import redis

        return redis.Redis(port=port, password=self.password, socket_timeout=2)

    def sentinel(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_timeout=2)

    def start(self, timeout: float = 15) -> SentinelSet:
        self.master.start()
        self.replica.start()
        conf = self.workdir / "sentinel.conf"  # Sentinel rewrites it: its own copy
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel auth-pass {self.SERVICE} {self.password}\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 300\n"
            f"sentinel failover-timeout {self.SERVICE} 3000\n"
        )
        binary = shutil.which("redis-sentinel") or self.master.binary
        self.proc = subprocess.Popen(
            [binary, str(conf), "--sentinel"],
            stdout=(self.workdir / "sentinel.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        # Ready for a failover: the replica in sync and known to the sentinel.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis sentinel exited {self.proc.returncode}")
            if self._replica_known():
                return self
            time.sleep(0.05)
        raise RuntimeError("sentinel did not see the replica in sync")

    def _replica_known(self) -> bool:
        import redis

        try:
            replicas = self.sentinel().sentinel_slaves(self.SERVICE)
            info = self.client(self.replica.port).info("replication")
        except redis.RedisError:
            return False
        return info.get("master_link_status") == "up" and any(
            r["port"] == self.replica.port and not r["is_sdown"] for r in replicas
        )

    def master_port(self) -> int:
        _, port = self.sentinel().sentinel_get_master_addr_by_name(self.SERVICE)
        return int(port)

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: the replica becomes master, the old master its replica
        (Sentinel then disconnects the old master's clients)."""
        self.sentinel().execute_command("SENTINEL", "FAILOVER", self.SERVICE)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        self.replica.stop()
        self.master.stop()
