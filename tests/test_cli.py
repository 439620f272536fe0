"""The ``fxgate`` command as an operator uses it, against a real state directory."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from fxgate.cli.main import main
from tests.conftest import ROOT, Daemon


def fxgate(
    *args: str, state: Path, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    return Daemon(state, env=env).cli(*args, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["serve"],
        ["keys"],
        ["keys", "list"],
        ["keys", "rotate"],
        ["keys", "retire"],
        ["keys", "prune"],
        ["users"],
        ["users", "add"],
        ["users", "list"],
        ["users", "disable"],
        ["token"],
        ["token", "issue"],
        ["config"],
        ["config", "check"],
    ],
)
def test_help_is_useful(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fxgate", *args, "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "usage: fxgate" in out.stdout
    assert len(out.stdout.splitlines()) >= 4


def test_token_issue_prints_only_a_jwt_and_creates_the_user(tmp_path: Path) -> None:
    out = fxgate(
        "token",
        "issue",
        "--user",
        "ops-bot",
        "--role",
        "viewer",
        "--tier",
        "pro",
        "--ttl",
        "120",
        state=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert out.stdout == token + "\n"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "ops-bot"
    assert claims["role"] == "viewer"
    assert claims["tier"] == "pro"
    assert claims["exp"] - claims["iat"] == 120
    assert set(claims) == {"sub", "role", "tier", "iat", "exp", "jti"}
    assert jwt.get_unverified_header(token)["kid"]
    users = json.loads(fxgate("users", "list", "--json", state=tmp_path).stdout)
    assert [u["id"] for u in users] == ["ops-bot"]
    assert users[0]["role"] == "viewer"


def test_users_add_list_disable(tmp_path: Path) -> None:
    add = fxgate(
        "users", "add", "--email", "Ann@Example.com", "--name", "Ann", "--role", "trader",
        "--password-stdin", state=tmp_path, input="correct horse battery\n",
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    uid = add.stdout.strip()
    dup = fxgate(
        "users", "add", "--email", "ann@example.com", "--name", "Ann2", "--password",
        "another-pass", state=tmp_path,
    )  # fmt: skip
    assert dup.returncode != 0
    assert "exists" in dup.stderr
    short = fxgate(
        "users", "add", "--email", "b@x.io", "--name", "B", "--password", "short", state=tmp_path
    )
    assert short.returncode != 0
    assert "8 characters" in short.stderr
    assert fxgate("users", "disable", uid, state=tmp_path).returncode == 0
    listing = fxgate("users", "list", state=tmp_path).stdout
    assert f"{uid}\tAnn@Example.com\ttrader\tdisabled\tAnn" in listing
    refused = fxgate("token", "issue", "--user", uid, state=tmp_path)
    assert refused.returncode != 0
    assert "disabled" in refused.stderr
    assert fxgate("users", "disable", "nobody", state=tmp_path).returncode != 0


def test_keys_list_rotate_retire(tmp_path: Path) -> None:
    fxgate("token", "issue", "--user", "x", state=tmp_path)  # creates the first key
    first = fxgate("keys", "list", state=tmp_path).stdout.split("\t")[0]
    new = fxgate("keys", "rotate", state=tmp_path).stdout.strip()
    rows = [line.split("\t") for line in fxgate("keys", "list", state=tmp_path).stdout.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [(first, "standby"), (new, "active")]
    assert fxgate("keys", "retire", first, state=tmp_path).returncode == 0
    assert fxgate("keys", "retire", first, state=tmp_path).returncode != 0
    statuses = {
        k["kid"]: k["status"]
        for k in json.loads(fxgate("keys", "list", "--json", state=tmp_path).stdout)
    }
    assert statuses == {first: "retired", new: "active"}


def test_config_check_names_the_bad_key(tmp_path: Path) -> None:
    good = fxgate("config", "check", "--config", str(ROOT / "etc" / "fxgate.toml"), state=tmp_path)
    assert good.returncode == 0, good.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[ws]\nmax_subscriptons = 5\n[server]\nport = "eighty"\n')
    out = fxgate("config", "check", "--config", str(bad), state=tmp_path)
    assert out.returncode == 1
    assert "ws.max_subscriptons: unknown key" in out.stderr
    assert "server.port" in out.stderr
    env = fxgate(
        "config",
        "check",
        "--config",
        str(ROOT / "etc" / "fxgate.toml"),
        state=tmp_path,
        env={"FXGATE_WS_PING_INTERVAL": "soon"},
    )
    assert env.returncode == 1
    assert "ws.ping_interval" in env.stderr
    syntax = tmp_path / "syntax.toml"
    syntax.write_text("[ws\n")
    assert (
        "TOML syntax" in fxgate("config", "check", "--config", str(syntax), state=tmp_path).stderr
    )


def test_example_config_has_every_key() -> None:
    import tomllib

    from pydantic import BaseModel

    from fxgate.config.settings import Settings

    text = (ROOT / "etc" / "fxgate.toml").read_text()
    example = tomllib.loads(text)
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            # Keys without a default (None) are shown commented out.
            unset = {k for k, v in default.model_dump().items() if v is None}
            assert set(example[name]) == set(type(default).model_fields) - unset, name
            assert all(f"# {k} =" in text for k in unset), name
        else:
            assert name in example, name


def test_cli_works_while_the_daemon_runs(daemon: Daemon) -> None:
    out = daemon.cli("users", "list")
    assert out.returncode == 0, out.stderr
    assert daemon.cli("keys", "list").stdout.count("active") == 1


# -- keys prune: the retirement that scripts/rotate-keys runs after a rotation -------------


def backdate(state: Path, **days_ago: float) -> None:
    """Set keys' creation times (kid -> days ago) in the daemon's SQLite file, as if the
    ring had been rotated over weeks."""
    with sqlite3.connect(state / "fxgate.sqlite3") as db:
        for kid, days in days_ago.items():
            when = datetime.now(UTC) - timedelta(days=days)
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
            assert (
                db.execute(
                    "UPDATE signing_keys SET created_at = ? WHERE kid = ?", (stamp, kid)
                ).rowcount
                == 1
            )


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``fxgate …`` run in this process, on ``tmp_path``'s state: the same parser and
    commands as the console script, without an interpreter start-up per call."""
    for name in [k for k in os.environ if k.startswith("FXGATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FXGATE_STATE_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no ./etc/fxgate.toml

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = int(exc.code or 0)
        return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())

    return run


def ring_rotated_weekly(here: Cli, state: Path) -> list[str]:
    """k1 retired long ago; k2 stopped signing 40 days ago (k3 replaced it); k3 was made
    40 days ago but signed tokens until k4 replaced it three hours ago; k4 is active."""
    here("token", "issue", "--user", "x")
    kids = [here("keys", "list").stdout.split("\t")[0]]
    kids += [here("keys", "rotate").stdout.strip() for _ in range(3)]
    assert here("keys", "retire", kids[0]).returncode == 0
    backdate(state, **dict(zip(kids, (60, 50, 40, 0.125), strict=True)))
    return kids


def statuses(here: Cli) -> dict[str, str]:
    return {k["kid"]: k["status"] for k in json.loads(here("keys", "list", "--json").stdout)}


def actions(stdout: str) -> dict[str, str]:
    """``action=retire kid=k2 …`` lines as {kid: action}."""
    found = {}
    for line in stdout.splitlines():
        fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
        if "kid" in fields:
            found[fields["kid"]] = fields["action"]
    return found


def test_keys_prune_retires_only_keys_out_of_service_past_grace(here: Cli, tmp_path: Path) -> None:
    k1, k2, k3, k4 = ring_rotated_weekly(here, tmp_path)
    # The installed command, as scripts/rotate-keys runs it; the default grace: a day.
    out = fxgate("keys", "prune", state=tmp_path)

    assert out.returncode == 0, out.stderr
    # k3 is 40 days old but signed tokens until 3 h ago.
    assert actions(out.stdout) == {k4: "active", k2: "retire", k3: "keep"}
    assert statuses(here) == {k1: "retired", k2: "retired", k3: "standby", k4: "active"}
    assert f"action=keep kid={k3} standby_since=" in out.stdout
    assert out.stdout.splitlines()[-1] == "action=summary retired=1 kept=1 failed=0"
    assert out.stderr == ""
    with sqlite3.connect(tmp_path / "fxgate.sqlite3") as db:
        audited = db.execute("SELECT target FROM audit WHERE action = 'keys.retire'").fetchall()
    assert sorted(t for (t,) in audited) == sorted([k1, k2])
    # Right after a rotation the key that was active until then is kept, whatever the grace.
    k5 = here("keys", "rotate").stdout.strip()
    again = here("keys", "prune", "--grace", "3600")
    assert actions(again.stdout) == {k5: "active", k3: "retire", k4: "keep"}
    assert statuses(here)[k4] == "standby"
    assert "shorter than the access-token lifetime" not in again.stderr


def test_keys_prune_dry_run_changes_nothing(here: Cli, tmp_path: Path) -> None:
    k1, k2, k3, k4 = ring_rotated_weekly(here, tmp_path)
    out = here("keys", "prune", "--dry-run", "--grace", "3600")

    assert out.returncode == 0, out.stderr
    assert actions(out.stdout) == {k4: "active", k2: "retire", k3: "retire"}
    assert all(line.endswith("dry_run=yes") for line in out.stdout.splitlines()[1:])
    assert statuses(here) == {k1: "retired", k2: "standby", k3: "standby", k4: "active"}


def test_keys_prune_warns_of_a_grace_shorter_than_the_token_lifetime(
    here: Cli, tmp_path: Path
) -> None:
    _, k2, k3, k4 = ring_rotated_weekly(here, tmp_path)
    out = here("keys", "prune", "--grace", "600")

    assert out.returncode == 0, out.stderr
    assert "grace 600s is shorter than the access-token lifetime" in out.stderr
    assert actions(out.stdout) == {k4: "active", k2: "retire", k3: "retire"}


@pytest.mark.parametrize("grace", ["1d", "-5", ""])
def test_keys_prune_refuses_a_grace_that_is_not_whole_seconds(here: Cli, grace: str) -> None:
    out = here("keys", "prune", "--grace", grace)
    assert out.returncode == 2
    assert "--grace" in out.stderr


BAD_SETTINGS = {
    "unknown broker": (
        {"FXGATE_BROKER_BACKEND": "tws"},
        'broker.backend = "tws": unknown backend (known: "paper", "mt5")',
    ),
    "mt5 not installed": (
        {"FXGATE_BROKER_BACKEND": "mt5", "FXGATE_MT5_OWNER": "u_1", "SHADOW": "MetaTrader5"},
        "broker.backend = \"mt5\": MetaTrader5 is not installed (pip install 'fxgate[mt5]')",
    ),
    "unknown bus": (
        {"FXGATE_BUS_BACKEND": "kafka"},
        'bus.backend = "kafka": unknown backend (known: "local", "redis")',
    ),
    "workers without redis": (
        {"FXGATE_SERVER_WORKERS": "2"},
        'server.workers = 2: more than one worker needs bus.backend = "redis"',
    ),
    "bus not installed": (
        {"FXGATE_BUS_BACKEND": "redis", "SHADOW": "redis"},
        "bus.backend = \"redis\": not installed (pip install 'fxgate[redis]')",
    ),
    "bad redis url": (
        {"FXGATE_BUS_BACKEND": "redis", "FXGATE_BUS_REDIS_URL": "http://h:6379"},
        "bus.redis_url: 'http://h:6379' is not a redis://, rediss://, unix:// or"
        " redis+sentinel:// URL",
    ),
    "unknown store": (
        {"FXGATE_STORE_BACKEND": "postgres"},
        'store.backend = "postgres": unknown backend (known: "sqlite", "mongodb")',
    ),
    "store not installed": (
        {"FXGATE_STORE_BACKEND": "mongodb", "SHADOW": "motor"},
        "store.backend = \"mongodb\": not installed (pip install 'fxgate[mongodb]')",
    ),
    "unknown paper symbol": (
        {"FXGATE_PAPER_SYMBOLS": '["EURUSD","EURUSX"]'},
        "paper.symbols: unknown symbols ['EURUSX']; known: ['AUDUSD', 'BTCUSD',",
    ),
    "unknown plugin disabled": (
        {"FXGATE_DISABLE_PLUGINS": '["alertz"]'},
        "disable_plugins: unknown plugins ['alertz']; known: ['account', 'alerts',",
    ),
    "plugin not importable": (
        {"FXGATE_PLUGINS": '["no_such_plugin_xyz"]'},
        "plugins: plugin module 'no_such_plugin_xyz' could not be imported",
    ),
}


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"FXGATE_SERVER_SWITCH_INTERVAL": "0"}, "server.switch_interval: Input should be"),
        ({"FXGATE_SERVER_GC_FREEZE": "maybe"}, "server.gc_freeze: Input should be a valid"),
    ],
)
def test_config_check_and_serve_print_the_same_block_for_a_value_of_the_wrong_type_or_range(
    tmp_path: Path, env: dict[str, str], line: str
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    check = fxgate("config", "check", state=state, env=env)
    serve = fxgate("serve", "--host", "127.0.0.1", "--port", "0", state=state, env=env)
    assert (check.returncode, serve.returncode) == (1, 2)
    block = check.stderr.strip().splitlines()
    assert block[0] == "fxgate: configuration invalid:"
    assert block[1].strip().startswith(line)
    assert serve.stderr.strip().splitlines()[-len(block) :] == block


@pytest.mark.parametrize("case", BAD_SETTINGS, ids=list(BAD_SETTINGS))
def test_config_check_and_serve_refuse_a_bad_setting_with_the_same_line(
    case: str, tmp_path: Path
) -> None:
    env, expected = BAD_SETTINGS[case]
    env = dict(env)
    shadow = env.pop("SHADOW", None)
    if shadow:
        # A package that fails to import, ahead of the real one: "not installed".
        fake = tmp_path / "shadow" / shadow
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text(f"raise ImportError('No module named {shadow}')\n")
        env["PYTHONPATH"] = f"{tmp_path / 'shadow'}:{ROOT}"
    state = tmp_path / "state"
    state.mkdir()
    check = fxgate("config", "check", state=state, env=env)
    assert check.returncode == 1, check.stderr
    assert check.stderr.splitlines()[0] == "fxgate: configuration invalid:", check.stderr
    problem = check.stderr.splitlines()[1].strip()
    assert problem.startswith(expected), check.stderr
    serve = fxgate("serve", "--host", "127.0.0.1", "--port", "0", state=state, env=env)
    assert serve.returncode == 2
    assert serve.stderr.splitlines()[-1] == f"fxgate: cannot start: {problem}"
    assert "Traceback" not in serve.stderr
    assert not (state / "master.key").exists()  # refused before touching the state
