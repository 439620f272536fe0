"""The control API over HTTP, for a fake that runs inside a daemon subprocess.

``FAKE_MT5_CONTROL=127.0.0.1:PORT`` starts it when the package is imported: ``POST
/<function>`` with a JSON object of keyword arguments calls that function of
``_control`` and answers ``{"result": ...}`` (or ``{"error": ...}`` with status 400).
Loopback only, for tests and dry runs.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import _control

_PUBLIC = {
    name
    for name in dir(_control)
    if not name.startswith("_") and callable(getattr(_control, name)) and name != "get"
}
_PUBLIC -= {"Any", "Scenario", "Terminal", "annotations", "replace", "terminal"}
_server: ThreadingHTTPServer | None = None


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        name = self.path.strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if name not in _PUBLIC or not isinstance(body, dict):
                raise ValueError(f"unknown control function {name!r}")
            result: Any = getattr(_control, name)(**body)
            status, payload = 200, {"result": result}
        except Exception as e:
            status, payload = 400, {"error": f"{type(e).__name__}: {e}"}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def start(host: str, port: int) -> int:
    """Serve the control API on ``host:port`` (0: any free port); returns the port."""
    global _server
    if _server is None:
        _server = ThreadingHTTPServer((host, port), _Handler)
        thread = threading.Thread(target=_server.serve_forever, name="fake-mt5-control")
        thread.daemon = True
        thread.start()
    return int(_server.server_address[1])


def start_from_env() -> None:
    spec = os.environ.get("FAKE_MT5_CONTROL", "").strip()
    if spec:
        host, _, port = spec.rpartition(":")
        start(host or "127.0.0.1", int(port))
