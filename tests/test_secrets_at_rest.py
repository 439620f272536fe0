"""Secrets at rest: a copy of the database alone cannot forge tokens or API-key signatures.

Signing keys and API-key secrets are sealed with a master key kept outside the store
(``<state_dir>/master.key`` by default); old clear-text state keeps working; a daemon or
a CLI with the wrong master key refuses with one clear line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from fxgate.services.auth.sealing import (
    PREFIX,
    Sealer,
    SealError,
    generate_key,
    master_key_path,
)
from tests.conftest import ROOT, Daemon, run_sync
from tests.test_rest_auth import add_user, login, sign
from tests.test_rest_basics import bearer
from tests.wsclient import Client


def stored_secrets(state_dir: Path, table: str) -> dict[str, str]:
    """What a thief with a copy of the SQLite file reads."""
    id_column = {"signing_keys": "kid", "api_keys": "key_id"}[table]
    with contextlib.closing(sqlite3.connect(state_dir / "fxgate.sqlite3")) as db:
        return dict(db.execute(f"SELECT {id_column}, secret FROM {table}").fetchall())


def raw_bytes(state_dir: Path) -> bytes:
    """The database file and its write-ahead log, byte for byte.

    Only while this process holds no SQLite connection to them (``stored_secrets``
    closes its own): closing any descriptor of a file drops every POSIX lock the
    process holds on it, and a connection left open would then corrupt the shared WAL
    index (SQLite's "How To Corrupt An SQLite Database File", section 2.2).
    """
    return b"".join(p.read_bytes() for p in sorted(state_dir.glob("fxgate.sqlite3*")))


def create_api_key(d: Daemon, token: str) -> tuple[str, str]:
    r = httpx.post(d.url("/auth/api-keys"), headers=bearer(token), json={"name": "bot"})
    assert r.status_code == 201, r.text
    return r.json()["data"]["id"], r.json()["data"]["secret"]


def signed_login(d: Daemon, key: str, secret: str) -> httpx.Response:
    ts = int(time.time() * 1000)
    body = {"api_key": key, "signature": sign(secret, ts, key), "timestamp": ts}
    return httpx.post(d.url("/auth/login"), json=body)


async def ws_connects(d: Daemon, token: str) -> bool:
    async with await Client.connect(d.ws_url() + f"?token={token}") as c:
        return (await c.recv())["type"] == "connection"


def serve(d: Daemon, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``fxgate serve`` expected to exit at start-up; stderr kept apart from stdout."""
    return subprocess.run(
        [sys.executable, "-m", "fxgate", "serve", "--host", "127.0.0.1", "--port", "0"],
        env={**d.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=d.state_dir,
    )


def write_key_file(path: Path) -> Path:
    path.write_text(generate_key() + "\n")
    path.chmod(0o600)
    return path


# -- the daemon --------------------------------------------------------------------------


async def test_secrets_are_sealed_in_the_database_and_work_across_a_restart(
    fresh_daemon: Daemon,
) -> None:
    d = fresh_daemon.start()
    master = d.state_dir / "master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    key_text = master.read_text()

    owner = d.token("alice")
    key_id, api_secret = create_api_key(d, owner)
    r = signed_login(d, key_id, api_secret)
    assert r.status_code == 200, r.text
    program = r.json()["data"]["accessToken"]

    # The API key's secret: sealed in its row, and nowhere in the files in clear.
    api_rows = stored_secrets(d.state_dir, "api_keys")
    assert api_rows[key_id].startswith(PREFIX)
    assert api_secret.encode() not in raw_bytes(d.state_dir)

    # The signing key: sealed too; unsealed with the master key it verifies the tokens
    # the daemon issues, so the stored value is that secret and nothing else.
    (kid, sealed), *_ = stored_secrets(d.state_dir, "signing_keys").items()
    assert sealed.startswith(PREFIX)
    secret = Sealer(master).unseal(sealed)
    assert secret.encode() not in raw_bytes(d.state_dir)
    assert jwt.get_unverified_header(program)["kid"] == kid
    assert jwt.decode(program, secret, algorithms=["HS256"])["sub"] == "alice"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(program, sealed, algorithms=["HS256"])

    # Nothing logged holds a secret.
    log = d.log()
    assert api_secret not in log
    assert secret not in log
    assert key_text.strip() not in log

    d.stop()
    d.start()
    assert master.read_text() == key_text
    for token in (owner, program, d.token("bob")):
        r = httpx.get(d.url("/auth/me"), headers=bearer(token))
        assert r.status_code == 200, r.text
        assert await ws_connects(d, token)
    r = signed_login(d, key_id, api_secret)
    assert r.status_code == 200, r.text
    assert await ws_connects(d, r.json()["data"]["accessToken"])

    # `keys list` shows no key material either.
    out = d.cli("keys", "list", "--json")
    assert out.returncode == 0, out.stderr
    assert kid in out.stdout
    assert secret not in out.stdout + out.stderr
    assert PREFIX not in out.stdout


async def test_a_legacy_clear_text_signing_key_still_verifies(fresh_daemon: Daemon) -> None:
    d = fresh_daemon
    state = d.state_dir
    legacy = "legacy-clear-text-secret-0123456789abcdef"
    legacy_api = "legacy-api-key-secret-fedcba9876543210"

    async def old_state() -> None:
        from fxgate.store.factory import build_store

        store = build_store("sqlite", state_dir=state, mongodb_uri=None, mongodb_database="x")
        await store.open()
        try:
            await store.users.create(
                user_id="old", email="old@test.invalid", name="old", role="trader", tier="pro"
            )
            await store.signing_keys.add(kid="klegacy", secret=legacy)
            await store.api_keys.create(user_id="old", key_id="fxk_legacy", secret=legacy_api)
        finally:
            await store.close()

    state.mkdir()
    run_sync(old_state())
    now = int(time.time())
    old_token = jwt.encode(
        {"sub": "old", "role": "trader", "tier": "pro", "iat": now, "exp": now + 600,
         "jti": "j-legacy"},
        legacy, algorithm="HS256", headers={"kid": "klegacy"},
    )  # fmt: skip

    d.start()
    assert httpx.get(d.url("/auth/me"), headers=bearer(old_token)).status_code == 200
    assert await ws_connects(d, old_token)
    r = signed_login(d, "fxk_legacy", legacy_api)
    assert r.status_code == 200, r.text
    assert (state / "master.key").is_file()  # ready for the next secret
    # Said once, without the secrets.
    notes = [line for line in d.log().splitlines() if "clear-text secrets" in line]
    assert len(notes) == 1, d.log()
    assert legacy not in d.log()
    assert legacy_api not in d.log()

    # A rotation writes a sealed key; the legacy one keeps verifying until retired.
    out = d.cli("keys", "rotate")
    assert out.returncode == 0, out.stderr
    new_kid = out.stdout.strip()
    assert stored_secrets(state, "signing_keys")[new_kid].startswith(PREFIX)
    assert stored_secrets(state, "signing_keys")["klegacy"] == legacy
    assert httpx.get(d.url("/auth/me"), headers=bearer(old_token)).status_code == 200
    fresh = d.token("old")
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    assert httpx.get(d.url("/auth/me"), headers=bearer(fresh)).status_code == 200


def test_the_wrong_master_key_is_refused_with_one_line(
    fresh_daemon: Daemon, tmp_path: Path
) -> None:
    d = fresh_daemon.start()
    d.stop()
    master = d.state_dir / "master.key"
    (kid, sealed), *_ = stored_secrets(d.state_dir, "signing_keys").items()
    secret = Sealer(master).unseal(sealed)
    other = write_key_file(tmp_path / "other.key")
    wrong = {"FXGATE_AUTH_MASTER_KEY_FILE": str(other)}

    out = serve(d, wrong)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("fxgate: cannot start: ")
    assert kid in lines[0]
    assert str(other) in lines[0]
    assert "master key changed" in lines[0]
    assert secret not in out.stderr + out.stdout

    for args in (("keys", "list"), ("keys", "rotate"), ("token", "issue", "--user", "x")):
        out = Daemon(d.state_dir, env=wrong).cli(*args)
        assert out.returncode != 0, args
        assert out.stderr.strip().splitlines() == [out.stderr.strip()], out.stderr
        assert "master key changed" in out.stderr
    # The refused rotation wrote nothing.
    assert list(stored_secrets(d.state_dir, "signing_keys")) == [kid]

    # A lost master key file is reported, not replaced by a new one.
    master.rename(tmp_path / "master.key.bak")
    out = serve(d, {})
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "master key file" in out.stderr
    assert "does not exist" in out.stderr
    assert not master.exists()

    # Put back, all is well again.
    (tmp_path / "master.key.bak").rename(master)
    d.start()
    assert httpx.get(d.url("/auth/me"), headers=bearer(d.token("carol"))).status_code == 200
    d.stop()


#: The recovery for a master key lost without a backup, as docs/operations.md gives it.
RECOVERY_SQL = """
UPDATE signing_keys SET active = 0, retired_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
  WHERE retired_at IS NULL;
UPDATE api_keys SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
  WHERE revoked_at IS NULL;
"""


def test_a_lost_master_key_is_recovered_from_with_new_keys(fresh_daemon: Daemon) -> None:
    d = fresh_daemon.start()
    account = add_user(d)
    session = login(d, account.email).json()["data"]
    key_id, api_secret = create_api_key(d, session["accessToken"])
    (old_kid,) = stored_secrets(d.state_dir, "signing_keys")
    d.stop()

    (d.state_dir / "master.key").unlink()
    assert serve(d, {}).returncode != 0
    text = (ROOT / "docs" / "operations.md").read_text()
    assert " ".join(RECOVERY_SQL.split()) in " ".join(text.split())
    with contextlib.closing(sqlite3.connect(d.state_dir / "fxgate.sqlite3")) as db:
        db.executescript(RECOVERY_SQL)

    d.start()
    assert (d.state_dir / "master.key").is_file()
    keys = {k["kid"]: k["status"] for k in json.loads(d.cli("keys", "list", "--json").stdout)}
    assert keys.pop(old_kid) == "retired"
    assert list(keys.values()) == ["active"]
    # Access tokens of the lost key are refused; refresh tokens (hashed, not sealed)
    # still give new ones; API keys are revoked, to be created anew.
    old_access = bearer(session["accessToken"])
    assert httpx.get(d.url("/auth/me"), headers=old_access).status_code == 401
    r = httpx.post(d.url("/auth/refresh"), json={"refreshToken": session["refreshToken"]})
    assert r.status_code == 200, r.text
    access = r.json()["data"]["accessToken"]
    assert httpx.get(d.url("/auth/me"), headers=bearer(access)).status_code == 200
    assert signed_login(d, key_id, api_secret).status_code == 401
    listed = httpx.get(d.url("/auth/api-keys"), headers=bearer(access)).json()["data"]
    assert [(k["id"], k["active"]) for k in listed] == [(key_id, False)]
    key_id, api_secret = create_api_key(d, access)
    assert signed_login(d, key_id, api_secret).status_code == 200
    d.stop()


# -- the sealer on its own ---------------------------------------------------------------


def test_sealer_round_trip_legacy_values_and_master_key_rotation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = master_key_path("", tmp_path)
    assert path == tmp_path / "master.key"
    sealer = Sealer(path)
    assert sealer.unseal("clear") == "clear"  # legacy: no key file needed, none made
    assert not path.exists()

    old_umask = os.umask(0)
    try:
        sealed = sealer.seal("s3cret")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sealed.startswith(PREFIX)
    assert "s3cret" not in sealed
    assert sealer.seal("s3cret") != sealed  # a fresh IV each time
    assert Sealer(path).unseal(sealed) == "s3cret"

    # Rotation: a new key on top seals; the old one, kept below, still unseals.
    old_key = path.read_text().strip()
    path.write_text(f"# rotated\n{generate_key()}\n\n{old_key}\n")
    rotated = Sealer(path)
    assert rotated.unseal(sealed) == "s3cret"
    new_sealed = rotated.seal("next")
    only_old = tmp_path / "only-old.key"
    only_old.write_text(old_key + "\n")
    with pytest.raises(SealError, match="master key changed"):
        Sealer(only_old).unseal(new_sealed, what="API key fxk_1")

    # Other people's read access is warned about, not refused.
    path.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="fxgate.services.auth.sealing"):
        assert Sealer(path).unseal(sealed) == "s3cret"
    assert "chmod 600" in caplog.text


def test_sealer_errors_name_the_file_never_the_contents(tmp_path: Path) -> None:
    sealed = Sealer(tmp_path / "a.key").seal("s3cret")
    bad = tmp_path / "bad.key"
    bad.write_text("not-a-fernet-key-but-maybe-a-secret\n")
    with pytest.raises(SealError) as info:
        Sealer(bad).unseal(sealed)
    assert str(bad) in str(info.value)
    assert "line 1" in str(info.value)
    assert "maybe-a-secret" not in str(info.value)

    empty = tmp_path / "empty.key"
    empty.write_text("# nothing\n")
    with pytest.raises(SealError, match="holds no key"):
        Sealer(empty).seal("x")

    with pytest.raises(SealError, match="does not exist"):
        Sealer(tmp_path / "missing.key").unseal(sealed)
    with pytest.raises(SealError, match="cannot create"):
        Sealer(tmp_path / "no-such-dir" / "master.key").seal("x")
    with pytest.raises(SealError, match="does not decrypt") as info:
        Sealer(tmp_path / "a.key").unseal(PREFIX + "garbage", what="signing key k1")
    assert "signing key k1" in str(info.value)


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "master.key"
    sealers = [Sealer(path) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        sealed = list(pool.map(lambda s: s.seal("same"), sealers))
    assert all(Sealer(path).unseal(v) == "same" for v in sealed)
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]  # no temporary left
