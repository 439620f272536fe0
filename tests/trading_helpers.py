"""Shared helpers of the trading tests: REST traders and an admin who sets exact prices.

The paper feed's random walk would move prices under a test's feet, so the trading tests
use a quiet market (the ``market`` fixture, or ``make_daemon(quiet=True)``: see
``tests/conftest.py``'s ``QUIET``) where every price a test sees is one it set itself
through ``POST /paper/quotes``. The admin call answers only after everything the new
price triggered is stored and announced, so a test can assert right after it, and a
socket's ``barrier()`` then shows everything it was sent.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import Daemon
from tests.wsclient import Client

PASSWORD = "correct horse battery"
_ids = itertools.count(1)


#: One HTTP client for all requests: a new httpx client per request costs an SSL context
#: (tens of milliseconds of CPU) even for plain http.
HTTP = httpx.Client(timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique(prefix: str) -> str:
    return f"{prefix}{next(_ids)}_{time.monotonic_ns() % 10**9}"


class Admin:
    """An admin that sets paper prices."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.headers = bearer(daemon.token(unique("admin"), "admin"))

    def quote(self, symbol: str, bid: str, ask: str) -> dict[str, Any]:
        r = HTTP.post(
            self.daemon.url("/api/v1/paper/quotes"),
            json={"symbol": symbol, "bid": float(bid), "ask": float(ask)},
            headers=self.headers,
        )
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    def publish(self, body: Any) -> httpx.Response:
        return HTTP.post(self.daemon.url("/api/v1/publish"), json=body, headers=self.headers)


@dataclass
class Trader:
    """A user with a token, talking REST to the daemon."""

    daemon: Daemon
    user_id: str
    token: str

    @classmethod
    def issued(cls, daemon: Daemon, role: str = "trader", user_id: str | None = None) -> Trader:
        """A user with a token issued in-process (fast)."""
        uid = user_id or unique("t")
        return cls(daemon, uid, daemon.token(uid, role))

    @classmethod
    def logged_in(cls, daemon: Daemon, role: str = "trader") -> Trader:
        """A user created with the CLI and logged in over REST, as a person does it."""
        email = f"{unique('trader')}@example.com"
        out = daemon.cli(
            "users", "add", "--email", email, "--name", "Test Trader", "--role", role,
            "--password", PASSWORD,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        r = HTTP.post(daemon.url("/api/v1/auth/login"), json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        return cls(daemon, data["user"]["id"], data["accessToken"])

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return HTTP.request(method, self.daemon.url(f"/api/v1{path}"), headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any) -> httpx.Response:
        return self.request("PUT", path, json=body)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    # -- the common calls, asserting success -------------------------------------------

    def order(self, expect: int = 201, **body: Any) -> dict[str, Any]:
        r = self.post("/trading/orders", body)
        assert r.status_code == expect, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    def buy(self, quantity: float, symbol: str = "EURUSD", **kw: Any) -> dict[str, Any]:
        return self.order(symbol=symbol, type=kw.pop("type", "market"), side="buy",
                          quantity=quantity, **kw)  # fmt: skip

    def sell(self, quantity: float, symbol: str = "EURUSD", **kw: Any) -> dict[str, Any]:
        return self.order(symbol=symbol, type=kw.pop("type", "market"), side="sell",
                          quantity=quantity, **kw)  # fmt: skip

    def positions(self) -> list[dict[str, Any]]:
        r = self.get("/trading/positions")
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data

    def position(self, ticket: int) -> dict[str, Any]:
        r = self.get(f"/trading/positions/{ticket}")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    def orders(self, **params: Any) -> list[dict[str, Any]]:
        r = self.get("/trading/orders", params={"limit": 500, **params})
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data

    def get_order(self, order_id: str) -> dict[str, Any]:
        r = self.get(f"/trading/orders/{order_id}")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    def portfolio(self) -> dict[str, Any]:
        r = self.get("/trading/portfolio")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    def deals(self) -> list[dict[str, Any]]:
        r = self.get("/trading/deals", params={"limit": 500})
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data

    def close(self, ticket: int, volume: float | None = None) -> dict[str, Any]:
        params = {} if volume is None else {"volume": volume}
        r = self.delete(f"/trading/positions/{ticket}", params=params)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    async def socket(self, *channels: Any) -> Client:
        """A WebSocket on ``/api/ws`` subscribed to ``channels``, past the snapshots."""
        c = await Client.connect(self.daemon.ws_url() + f"?token={self.token}")
        hello = await c.recv()
        assert hello["type"] == "connection", hello
        assert hello["userId"] == self.user_id
        if channels:
            ack = await c.subscribe(*channels)
            assert ack["status"] == "success", ack
        return c


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error of a failed call, after checking seed 003's error envelope."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False, body
    assert set(body) == {"success", "error", "timestamp"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert body["timestamp"].endswith("Z")
    err: dict[str, Any] = body["error"]
    if code == "VALIDATION_ERROR":
        check_names_its_field(err)
    return err


def check_names_its_field(err: dict[str, Any]) -> None:
    """Issue 6, item 10: every VALIDATION_ERROR, over REST and every socket, names the
    field it is about in ``details.field`` (and, for several problems, lists each)."""
    details = err.get("details")
    assert isinstance(details, dict), err
    assert isinstance(details.get("field"), str), err
    assert details["field"], err
    for e in details.get("errors", ()):
        assert isinstance(e.get("field"), str), err
        assert e["field"], err
    if "errors" in details:
        assert details["field"] == details["errors"][0]["field"], err


def fields(err: dict[str, Any]) -> dict[str, str]:
    """``{field: type}`` of a VALIDATION_ERROR: each problem a body has, or its one field
    with its reason."""
    check_names_its_field(err)
    details = err["details"]
    if "errors" in details:
        return {e["field"]: e["type"] for e in details["errors"]}
    return {details["field"]: details.get("reason", "")}


def messages(err: dict[str, Any]) -> list[str]:
    """The per-field messages of a VALIDATION_ERROR listing several problems."""
    return [e["message"] for e in err["details"].get("errors", ())]


def live(msgs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The live (non-snapshot) messages of one type."""
    return [m for m in msgs if m.get("type") == kind and not m["data"].get("snapshot")]


async def read_until(
    c: Client, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 5
) -> list[dict[str, Any]]:
    """``c.read_until(done)``: every message read until ``done(all read so far)``."""
    return await c.read_until(done, timeout)


def has(kind: str, **match: Any) -> Callable[[list[dict[str, Any]]], bool]:
    """A ``read_until`` condition: a live message of ``kind`` with these data values."""

    def pred(msgs: list[dict[str, Any]]) -> bool:
        return any(all(m["data"].get(k) == v for k, v in match.items()) for m in live(msgs, kind))

    return pred


def all_of(
    *preds: Callable[[list[dict[str, Any]]], bool],
) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda msgs: all(p(msgs) for p in preds)


def one(msgs: list[dict[str, Any]], kind: str, **match: Any) -> dict[str, Any]:
    """The one live message of ``kind`` whose data has the ``match`` values."""
    found = [m for m in live(msgs, kind) if all(m["data"].get(k) == v for k, v in match.items())]
    assert len(found) == 1, (kind, match, [m["data"] for m in live(msgs, kind)])
    return found[0]
