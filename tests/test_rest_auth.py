"""Logging in over REST: passwords, refresh rotation, logout, API keys, and the audit log."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import Daemon, run_sync
from tests.test_rest_basics import bearer, error, fields
from tests.wsclient import Client

PASSWORD = "correct horse battery"
_emails = itertools.count(1)


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str = PASSWORD


def add_user(daemon: Daemon, role: str = "trader") -> Account:
    """A login user, created the way an operator does it: with the CLI."""
    email = f"Rest{next(_emails)}.{time.monotonic_ns()}@Example.com"
    out = daemon.cli(
        "users", "add", "--email", email, "--name", "Rest User", "--role", role,
        "--password", PASSWORD,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return Account(out.stdout.strip(), email)


def login(daemon: Daemon, email: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
    return httpx.post(
        daemon.url("/auth/login"), json={"email": email, "password": password, **extra}
    )


def audit(daemon: Daemon, actor: str) -> list[Any]:
    async def read() -> list[Any]:
        from fxgate.store.factory import build_store

        store = build_store(
            "sqlite", state_dir=daemon.state_dir, mongodb_uri=None, mongodb_database="x"
        )
        await store.open()
        try:
            entries, _ = await store.audit.page(actor=actor, limit=200)
            return entries
        finally:
            await store.close()

    result: list[Any] = run_sync(read())
    return result


def sign(secret: str, timestamp: int, api_key: str) -> str:
    """What docs/rest.md tells a client to compute, written out independently."""
    message = f"{timestamp}\n{api_key}\nPOST\n/auth/login"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def account(daemon: Daemon) -> Account:
    return add_user(daemon)


def test_login_me_refresh_and_reuse_revokes_the_family(daemon: Daemon, account: Account) -> None:
    r = login(daemon, account.email.upper())  # emails are not case-sensitive
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["expiresIn"] == 900
    user = data["user"]
    assert user["id"] == account.id
    assert user["email"] == account.email
    assert user["name"] == "Rest User"
    assert user["role"] == "trader"
    assert user["preferences"]["timezone"] == "UTC"
    assert user["createdAt"].endswith("Z")
    assert user["updatedAt"].endswith("Z")
    access, refresh = data["accessToken"], data["refreshToken"]

    me = httpx.get(daemon.url("/api/v1/auth/me"), headers=bearer(access)).json()["data"]
    assert me == user

    r = httpx.post(daemon.url("/auth/refresh"), json={"refreshToken": refresh})
    assert r.status_code == 200, r.text
    rotated = r.json()["data"]
    assert set(rotated) == {"accessToken", "refreshToken", "expiresIn"}
    assert rotated["refreshToken"] != refresh
    assert httpx.get(daemon.url("/auth/me"), headers=bearer(rotated["accessToken"])).is_success

    # The spent token again: reuse. It and the whole family are dead from now on.
    r = httpx.post(daemon.url("/auth/refresh"), json={"refreshToken": refresh})
    assert "already used" in error(r, 401, "AUTHENTICATION_ERROR")["message"]
    r = httpx.post(daemon.url("/auth/refresh"), json={"refreshToken": rotated["refreshToken"]})
    error(r, 401, "AUTHENTICATION_ERROR")

    actions = [e.action for e in audit(daemon, account.id)]
    assert "auth.login" in actions
    assert "auth.refresh_reuse" in actions


async def test_logout_revokes_the_access_token_everywhere(daemon: Daemon, account: Account) -> None:
    data = login(daemon, account.email).json()["data"]
    access, refresh = data["accessToken"], data["refreshToken"]
    async with await Client.connect(daemon.ws_url() + f"?token={access}") as c:
        assert (await c.recv())["type"] == "connection"

    async with httpx.AsyncClient(base_url=daemon.url("")) as http:
        r = await http.post(
            "/api/v1/auth/logout", headers=bearer(access), json={"refreshToken": refresh}
        )
        assert r.status_code == 200
        assert r.json()["message"] == "Logged out successfully"
        assert r.json()["success"] is True

        r = await http.get("/auth/me", headers=bearer(access))
        assert "revoked" in error(r, 401, "AUTHENTICATION_ERROR")["message"]
        r = await http.post("/auth/refresh", json={"refreshToken": refresh})
        error(r, 401, "AUTHENTICATION_ERROR")

    with pytest.raises(websockets.InvalidStatus) as info:
        await Client.connect(daemon.ws_url() + f"?token={access}")
    assert info.value.response.status_code == 401
    assert any(e.action == "auth.logout" for e in audit(daemon, account.id))


def test_wrong_password_and_unknown_email_fail_alike(daemon: Daemon, account: Account) -> None:
    wrong = error(login(daemon, account.email, "not the password"), 401, "AUTHENTICATION_ERROR")
    unknown = error(login(daemon, "nobody@example.com"), 401, "AUTHENTICATION_ERROR")
    assert wrong == unknown
    failed = [e for e in audit(daemon, account.id) if e.action == "auth.login_failed"]
    assert failed
    assert failed[0].details["reason"] == "bad_credentials"
    assert PASSWORD not in str([e.details for e in failed])


def test_login_validation_lists_each_field(daemon: Daemon) -> None:
    url = daemon.url("/auth/login")
    err = error(httpx.post(url, json={"email": "a@b.c"}), 422, "VALIDATION_ERROR")
    assert fields(err) == {"password": "missing"}
    err = error(httpx.post(url, json={"email": 7, "password": ["x"]}), 422, "VALIDATION_ERROR")
    assert fields(err) == {"email": "string_type", "password": "string_type"}
    body = {"email": "a@b.c", "password": "secret-secret", "remember_me": True}
    err = error(httpx.post(url, json=body), 422, "VALIDATION_ERROR")
    assert fields(err) == {"remember_me": "extra_forbidden"}
    assert "secret-secret" not in str(err)  # input values are never echoed


def test_remember_me_false_gives_a_one_day_session(daemon: Daemon, account: Account) -> None:
    refresh = login(daemon, account.email, rememberMe=False).json()["data"]["refreshToken"]

    async def lifetime() -> float:
        from fxgate.store.factory import build_store

        store = build_store("sqlite", state_dir=daemon.state_dir, mongodb_uri=None,
                            mongodb_database="x")  # fmt: skip
        await store.open()
        try:
            jti = hashlib.sha256(refresh.encode()).hexdigest()  # only the hash is stored
            record = await store.sessions.get_refresh_token(jti)
            assert record is not None
            return (record.expires_at - record.created_at).total_seconds()
        finally:
            await store.close()

    assert run_sync(lifetime()) == pytest.approx(86_400, abs=5)


def test_login_attempts_are_limited_per_email_and_address(daemon: Daemon) -> None:
    email = f"guess{time.monotonic_ns()}@example.com"
    statuses = [login(daemon, email, f"guess-{i}").status_code for i in range(10)]
    assert statuses == [401] * 10
    r = login(daemon, email, "guess-11")
    error(r, 429, "RATE_LIMIT_ERROR")
    assert int(r.headers["Retry-After"]) >= 1
    assert login(daemon, "other." + email).status_code == 401  # another email: not limited


def test_disabled_user_cannot_log_in_or_refresh(daemon: Daemon) -> None:
    account = add_user(daemon, role="viewer")
    refresh = login(daemon, account.email).json()["data"]["refreshToken"]
    assert daemon.cli("users", "disable", account.id).returncode == 0
    error(login(daemon, account.email), 401, "AUTHENTICATION_ERROR")
    r = httpx.post(daemon.url("/auth/refresh"), json={"refreshToken": refresh})
    error(r, 401, "AUTHENTICATION_ERROR")


# -- API keys (seed 004) ---------------------------------------------------------------------


def test_api_key_lifecycle_and_signed_login(daemon: Daemon, account: Account) -> None:
    token = bearer(login(daemon, account.email).json()["data"]["accessToken"])
    keys = daemon.url("/auth/api-keys")
    r = httpx.post(keys, headers=token, json={"name": "my bot"})
    assert r.status_code == 201, r.text
    created = r.json()["data"]
    key, secret = created["id"], created["secret"]
    assert created["active"] is True
    assert created["name"] == "my bot"

    listed = httpx.get(keys, headers=token).json()["data"]
    assert [k["id"] for k in listed] == [key]
    assert "secret" not in listed[0]

    def signed(ts: int, signature: str | None = None, api_key: str = key) -> httpx.Response:
        body = {"api_key": api_key, "signature": signature or sign(secret, ts, api_key),
                "timestamp": ts}  # fmt: skip
        return httpx.post(daemon.url("/api/v1/auth/login"), json=body)

    now = int(time.time() * 1000)
    r = signed(now)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["user"]["id"] == account.id
    program = bearer(r.json()["data"]["accessToken"])
    assert httpx.get(daemon.url("/auth/me"), headers=program).json()["data"]["id"] == account.id

    replay = error(signed(now), 401, "AUTHENTICATION_ERROR")
    assert "replay" in replay["message"]
    stale = error(signed(now - 60_000), 401, "AUTHENTICATION_ERROR")
    assert "30 s" in stale["message"]
    bad = error(signed(now + 1, "0" * 64), 401, "AUTHENTICATION_ERROR")
    unknown = error(signed(now + 2, api_key="fxk_nosuchkey"), 401, "AUTHENTICATION_ERROR")
    assert bad["message"] == unknown["message"]  # key ids cannot be probed
    err = error(httpx.post(daemon.url("/auth/login"), json={"api_key": key}), 422,
                "VALIDATION_ERROR")  # fmt: skip
    assert fields(err) == {"signature": "missing", "timestamp": "missing"}

    # Another user can neither see nor revoke the key.
    other = bearer(daemon.token(account.id + "_other"))
    assert httpx.get(keys, headers=other).json()["data"] == []
    error(httpx.delete(f"{keys}/{key}", headers=other), 404, "NOT_FOUND_ERROR")

    r = httpx.delete(f"{keys}/{key}", headers=token)
    assert r.status_code == 200
    assert r.json()["data"]["active"] is False
    assert r.json()["data"]["revokedAt"]
    error(signed(now + 3), 401, "AUTHENTICATION_ERROR")

    entries = audit(daemon, account.id)
    actions = {e.action for e in entries}
    assert {"apikey.create", "apikey.revoke", "auth.login"} <= actions
    assert secret not in str([(e.target, e.details) for e in entries])


def _with_store(daemon: Daemon, fn: Any) -> Any:
    async def go() -> Any:
        from fxgate.store.factory import build_store

        store = build_store(
            "sqlite", state_dir=daemon.state_dir, mongodb_uri=None, mongodb_database="x"
        )
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return run_sync(go())


def test_a_password_hashed_with_old_parameters_is_upgraded_at_login(daemon: Daemon) -> None:
    """Users from before the switch to OWASP's argon2id parameters still log in, and
    their hash is re-made with the new parameters on the way."""
    from argon2 import PasswordHasher

    user = add_user(daemon)
    old = PasswordHasher().hash(PASSWORD)  # argon2-cffi's defaults: m=65536, t=3, p=4
    _with_store(daemon, lambda s: s.users.update(user.id, password_hash=old))
    assert login(daemon, user.email).status_code == 200
    stored = _with_store(daemon, lambda s: s.users.get(user.id)).password_hash
    assert stored.startswith("$argon2id$v=19$m=47104,t=1,p=1$")
    assert login(daemon, user.email).status_code == 200
    assert login(daemon, user.email, "wrong password").status_code == 401
