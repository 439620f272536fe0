"""Putting the fake ``MetaTrader5`` package in place, and driving one in another process.

Import the fake only as ``MetaTrader5`` (with this directory on ``sys.path`` or
``PYTHONPATH``), never as ``tests.fake_mt5.MetaTrader5``: that would be a second module
with a second terminal.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

FAKE_PATH = Path(__file__).resolve().parent
ROOT = FAKE_PATH.parent.parent


def use_in_process() -> None:
    """Make ``import MetaTrader5`` find the fake in this process."""
    if str(FAKE_PATH) not in sys.path:
        sys.path.insert(0, str(FAKE_PATH))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_env(
    scenario: dict[str, Any] | None = None, control_port: int | None = None
) -> dict[str, str]:
    """Environment for a subprocess (``Daemon(env=...)``) whose ``import MetaTrader5``
    gets the fake, configured by ``scenario`` and driven on ``control_port``."""
    path = [str(FAKE_PATH), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {"PYTHONPATH": os.pathsep.join(p for p in path if p)}
    if scenario is not None:
        env["FAKE_MT5_SCENARIO"] = json.dumps(scenario)
    if control_port is not None:
        env["FAKE_MT5_CONTROL"] = f"127.0.0.1:{control_port}"
    return env


class ControlError(RuntimeError):
    pass


class RemoteControl:
    """The fake's ``_control`` functions, called over HTTP in the daemon's process:
    ``RemoteControl(port).call("open_position", symbol="EURUSD", side="buy", volume=0.1)``
    (blocking; from async tests use ``asyncio.to_thread``)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.base = f"http://{host}:{port}"
        self.timeout = timeout

    def call(self, name: str, **kwargs: Any) -> Any:
        data = json.dumps(kwargs).encode()
        req = urllib.request.Request(
            f"{self.base}/{name}", data, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())["result"]
        except urllib.error.HTTPError as e:
            raise ControlError(json.loads(e.read()).get("error", str(e))) from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda **kwargs: self.call(name, **kwargs)
