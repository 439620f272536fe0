"""The operator's kit: the systemd units and the admin scripts in scripts/.

The units are read as systemd reads them and checked for what docs/operations.md
and docs/mt5.md promise (sd_notify, watchdog, the sandbox, the mt5linux bridge on
loopback only); where systemd-analyze is installed they must also pass
`systemd-analyze verify`. The scripts run against a fake `fxgate` that records how it
was called.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
SCRIPTS = ROOT / "scripts"
BRIDGE = "fxgate-mt5linux.service"
UNITS = ("fxgate.service", "fxgate-rotate-keys.service", "fxgate-rotate-keys.timer", BRIDGE)
#: The two that run fxgate itself, as the fxgate user.
SERVICES = UNITS[:2]

FXGATE_BIN = "/opt/fxgate/venv/bin/fxgate"
CONFIG = "/etc/fxgate/fxgate.toml"
STATE_DIR = "/var/lib/fxgate"

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
    "ReadWritePaths": STATE_DIR,
}

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections of key -> values in order (keys may repeat), as systemd reads them."""
    sections: Unit = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit(name: str) -> Unit:
    return parse_unit((SYSTEMD / name).read_text())


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key)
    assert values is not None, f"{key}= missing"
    assert len(values) == 1, f"{key}= given {len(values)} times: {values}"
    return values[0]


def environment(section: dict[str, list[str]]) -> dict[str, str]:
    pairs = (
        item.split("=", 1) for value in section.get("Environment", []) for item in value.split()
    )
    return dict(pairs)


# ---- the units, as parsed ----------------------------------------------------------------


def test_the_service_notifies_systemd_and_is_restarted_on_failure() -> None:
    service = unit("fxgate.service")["Service"]
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    assert one(service, "WatchdogSec") == "30"
    assert one(service, "Restart") == "on-failure"
    assert one(service, "RestartSec") == "2"
    assert one(service, "KillSignal") == "SIGTERM"
    assert one(service, "TimeoutStopSec") == "15"
    assert one(service, "LimitNOFILE") == "65536"


def test_the_service_checks_its_config_before_serving_it() -> None:
    service = unit("fxgate.service")["Service"]
    assert one(service, "ExecStartPre") == f"{FXGATE_BIN} config check --config {CONFIG}"
    assert one(service, "ExecStart") == f"{FXGATE_BIN} serve --config {CONFIG}"
    assert unit("fxgate.service")["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("name", SERVICES)
def test_both_services_share_the_user_state_config_and_secrets(name: str) -> None:
    service = unit(name)["Service"]
    assert one(service, "User") == "fxgate"
    assert one(service, "Group") == "fxgate"
    assert "DynamicUser" not in service
    assert one(service, "StateDirectory") == "fxgate"
    assert one(service, "ConfigurationDirectory") == "fxgate"
    env = environment(service)
    assert env["FXGATE_STATE_DIR"] == STATE_DIR
    assert env["FXGATE_CONFIG"] == CONFIG
    assert one(service, "EnvironmentFile") == "-/etc/fxgate/fxgate.env"


@pytest.mark.parametrize("name", SERVICES)
def test_both_services_run_in_the_sandbox(name: str) -> None:
    service = unit(name)["Service"]
    for key, value in HARDENING.items():
        assert one(service, key) == value, key
    assert service["SystemCallFilter"][0] == "@system-service"
    assert all(value.startswith("~") for value in service["SystemCallFilter"][1:])


def test_the_rotation_job_runs_the_installed_script_with_the_venv_cli() -> None:
    service = unit("fxgate-rotate-keys.service")["Service"]
    assert one(service, "Type") == "oneshot"
    script = one(service, "ExecStart")
    assert script == "/opt/fxgate/bin/rotate-keys"
    assert (SCRIPTS / Path(script).name).is_file()
    assert environment(service)["FXGATE"] == FXGATE_BIN
    assert environment(service)["FXGATE_KEY_GRACE_SECONDS"] == "86400"


def test_the_timer_rotates_weekly_catching_up_on_missed_runs() -> None:
    timer = unit("fxgate-rotate-keys.timer")
    assert one(timer["Timer"], "OnCalendar") == "weekly"
    assert one(timer["Timer"], "Persistent") == "true"
    assert one(timer["Timer"], "RandomizedDelaySec") == "1h"
    assert timer["Install"]["WantedBy"] == ["timers.target"]


# ---- the mt5linux bridge ------------------------------------------------------------------

#: What fxgate's mt5.bridge points at, as docs/mt5.md and etc/fxgate.toml write it.
BRIDGE_URL = "mt5linux://127.0.0.1:18812"
BRIDGE_STATE = "/var/lib/fxgate-mt5"


def listen_problems(text: str) -> list[str]:
    """Why the bridge unit ``text`` might serve RPyC classic (which runs any code a client
    sends) to more than this host: it must name ``--host 127.0.0.1`` once, the port of
    BRIDGE_URL, and no registry broadcast."""
    exec_start = one(parse_unit(text)["Service"], "ExecStart")
    argv = shlex.split(exec_start)
    if "mt5linux" not in argv or argv[argv.index("mt5linux") - 1] != "-m":
        return [f"ExecStart does not run `-m mt5linux`: {exec_start}"]
    server = argv[argv.index("mt5linux") + 1 :]
    problems = []
    hosts = [server[i + 1] for i, arg in enumerate(server[:-1]) if arg == "--host"]
    hosts += [arg.split("=", 1)[1] for arg in server if arg.startswith("--host=")]
    if hosts != ["127.0.0.1"]:
        problems.append(f"--host must be given once, as 127.0.0.1: {hosts}")
    ports = [server[i + 1] for i, arg in enumerate(server[:-1]) if arg in ("-p", "--port")]
    if ports != [BRIDGE_URL.rsplit(":", 1)[1]]:
        problems.append(f"--port must be given once, as in {BRIDGE_URL}: {ports}")
    problems += [f"{flag} is not allowed" for flag in ("--register", "--ipv6") if flag in server]
    return problems


def test_the_bridge_listens_on_loopback_only() -> None:
    assert listen_problems((SYSTEMD / BRIDGE).read_text()) == []


def test_the_bridge_counts_as_started_once_its_port_answers() -> None:
    """fxgate's start-up check connects to the bridge: units ordered after this one must
    find the port open, not a process that is still starting Wine."""
    service = unit(BRIDGE)["Service"]
    wait = one(service, "ExecStartPost")
    host_port = BRIDGE_URL.removeprefix("mt5linux://").replace(":", "/")
    assert f"/dev/tcp/{host_port}" in wait
    assert shlex.split(wait)[:2] == ["/usr/bin/timeout", "120"]
    assert int(one(service, "TimeoutStartSec")) > 120


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("--host 127.0.0.1", "--host 0.0.0.0"),
        ("--host 127.0.0.1", "--host=::"),
        ("--host 127.0.0.1", ""),  # rpyc's default is loopback, but not every version's
        ("--host 127.0.0.1", "--host 127.0.0.1 --register"),
        ("--port 18812", "--port 8001"),
    ],
)
def test_the_loopback_check_would_catch_a_bridge_open_to_the_network(old: str, new: str) -> None:
    text = (SYSTEMD / BRIDGE).read_text()
    assert old in text
    assert listen_problems(text.replace(old, new))


def test_the_bridge_runs_the_wine_python_as_its_own_user_in_a_sandbox() -> None:
    """Its own user and prefix (the terminal's account data is not fxgate's to read), the
    parts of fxgate's sandbox that Wine tolerates, and none that it does not."""
    service = unit(BRIDGE)["Service"]
    assert one(service, "User") == one(service, "Group") == "fxgate-mt5"
    assert one(service, "StateDirectory") == "fxgate-mt5"
    env = environment(service)
    assert env["WINEPREFIX"] == f"{BRIDGE_STATE}/wine"
    assert env["HOME"] == BRIDGE_STATE
    assert one(service, "Restart") == "on-failure"
    assert one(service, "KillMode") == "control-group"
    argv = shlex.split(one(service, "ExecStart"))
    assert Path(argv[argv.index("-m") - 1]).name == "python.exe"
    assert argv[argv.index("-m") - 2].endswith("/wine")
    differs = (
        "ReadWritePaths",
        "RestrictAddressFamilies",
        "MemoryDenyWriteExecute",
        "LockPersonality",
    )
    for key, value in HARDENING.items():
        if key in differs:
            continue
        assert one(service, key) == value, key
    assert one(service, "ReadWritePaths") == BRIDGE_STATE
    assert one(service, "RestrictAddressFamilies") == "AF_INET AF_INET6 AF_UNIX AF_NETLINK"
    # Wine writes code it then runs, and its preloader may set the personality.
    assert "MemoryDenyWriteExecute" not in service
    assert "LockPersonality" not in service
    assert all(value.startswith("~") for value in service["SystemCallFilter"])


def test_fxgate_starts_after_the_bridge_but_does_not_need_it() -> None:
    """Ordering only: fxgate without MT5 (or with the bridge down) still starts, and the
    adapter reconnects once the bridge answers."""
    section = unit("fxgate.service")["Unit"]
    after = " ".join(section["After"]).split()
    assert BRIDGE in after
    for key in ("Wants", "Requires", "BindsTo", "Requisite"):
        assert BRIDGE not in " ".join(section.get(key, [])), key


def test_the_docs_and_the_config_name_the_unit_and_the_address_it_listens_on() -> None:
    doc = (ROOT / "docs" / "mt5.md").read_text()
    assert BRIDGE_URL in doc
    assert BRIDGE in doc
    assert BRIDGE_URL in (ROOT / "etc" / "fxgate.toml").read_text()


# ---- the units, as systemd-analyze verify sees them ---------------------------------------

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)"
)
EXEC_LINE = re.compile(r"^(ExecStart(?:Pre|Post)?=[-@:+!]*)(\S+)", re.MULTILINE)


def stand_in_executable() -> str:
    """An executable that exists here, for the /opt/fxgate paths verify would look up."""
    console_script = Path(sys.executable).parent / "fxgate"
    if console_script.is_file() and os.access(console_script, os.X_OK):
        return str(console_script)
    return shutil.which("true") or "/bin/true"


def verify(unit_dir: Path, edit: dict[str, str] | None = None) -> list[str]:
    """Copies the units, points Exec lines at a real executable, and returns the lines of
    `systemd-analyze verify` that speak of these units (lines about the host's own units
    are none of our business)."""
    unit_dir.mkdir()
    stand_in = stand_in_executable()
    for name in UNITS:
        text = EXEC_LINE.sub(lambda m: m.group(1) + stand_in, (SYSTEMD / name).read_text())
        for old, new in (edit or {}).items():
            text = text.replace(old, new)
        (unit_dir / name).write_text(text)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *(str(unit_dir / name) for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (result.stdout + result.stderr).splitlines()
    ours = [line for line in output if str(unit_dir) in line or any(n in line for n in UNITS)]
    if result.returncode != 0:
        ours.append(f"exit {result.returncode}: " + " | ".join(output))
    return ours


@needs_systemd_analyze
def test_systemd_analyze_verify_finds_nothing_wrong_with_the_units(tmp_path: Path) -> None:
    assert verify(tmp_path / "units") == []


@needs_systemd_analyze
def test_the_verify_check_would_catch_a_misspelt_key(tmp_path: Path) -> None:
    problems = verify(tmp_path / "units", {"ProtectClock=yes": "ProtectClocks=yes"})
    assert any("ProtectClocks" in line for line in problems), problems


# ---- scripts: syntax and --help -----------------------------------------------------------


@pytest.mark.parametrize("script", ["rotate-keys", "create-user"])
def test_script_parses_and_explains_itself(script: str) -> None:
    path = SCRIPTS / script
    assert os.access(path, os.X_OK), f"{path} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True, timeout=10)
    result = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: {script} ")


# ---- scripts against a fake fxgate --------------------------------------------------------

FAKE_FXGATE = """#!{python}
import json, os, sys
from datetime import datetime, timezone

args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
with open(os.environ["FAKE_KEYS"]) as f:
    keys = json.load(f)
fail = os.environ.get("FAKE_FAIL", "")
PRUNE_OUTPUT = os.environ["FAKE_PRUNE_OUTPUT"]


def save():
    with open(os.environ["FAKE_KEYS"], "w") as f:
        json.dump(keys, f)


if args[:2] == ["keys", "rotate"]:
    if fail == "rotate":
        sys.exit(1)
    for key in keys:
        if key["status"] == "active":
            key["status"] = "standby"
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    keys.append({{"kid": "k-new", "status": "active", "created_at": now}})
    save()
    print("rotated k-new private=SECRET-KEY-MATERIAL")
elif args[:2] == ["keys", "prune"]:
    if fail == "prune":
        sys.stderr.write("fxgate: cannot read the signing keys\\n")
        sys.exit(2)
    print(PRUNE_OUTPUT.format(grace=args[args.index("--grace") + 1]), end="")
    if fail == "retire":
        sys.exit(1)
elif args[:2] == ["users", "add"]:
    with open(os.environ["FAKE_STDIN"], "w") as f:
        f.write(sys.stdin.read())
    print("u-1")
else:
    sys.exit(2)
"""


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat(timespec="milliseconds")


@dataclass
class FakeFxgate:
    dir: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FXGATE", "FAKE_"))}
        return env | {
            "FXGATE": str(self.dir / "fxgate"),
            "FAKE_LOG": str(self.dir / "calls.jsonl"),
            "FAKE_KEYS": str(self.dir / "keys.json"),
            "FAKE_STDIN": str(self.dir / "stdin"),
            "FAKE_PRUNE_OUTPUT": PRUNE_OUTPUT,
        }

    def calls(self) -> list[list[str]]:
        log = self.dir / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def statuses(self) -> dict[str, str]:
        keys = json.loads((self.dir / "keys.json").read_text())
        return {key["kid"]: key["status"] for key in keys}

    def run(
        self, script: str, *args: str, env: dict[str, str] | None = None, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPTS / script), *args],
            env=self.env | (env or {}),
            capture_output=True,
            text=True,
            timeout=30,
            **kwargs,
        )


#: What the fake ``fxgate keys prune`` prints (``{grace}``: the --grace it was given);
#: the real one's plan is tested in tests/test_cli.py and tests/test_key_retirement.py.
PRUNE_OUTPUT = (
    "action=active kid=k-new created_at=2026-01-08T00:00:00Z\n"
    "action=retire kid=k2 standby_since=2025-12-01T00:00:00Z age=3456000s grace={grace}s\n"
    "action=keep kid=k3 standby_since=2026-01-08T00:00:00Z age=0s grace={grace}s\n"
    "action=summary retired=1 kept=1 failed=0\n"
)


@pytest.fixture
def fake(tmp_path: Path) -> FakeFxgate:
    """A fake ``fxgate`` whose key ring has one active key, k2."""
    fake_bin = tmp_path / "fxgate"
    fake_bin.write_text(FAKE_FXGATE.format(python=sys.executable))
    fake_bin.chmod(0o755)
    keys = [
        {"kid": "k1", "status": "retired", "created_at": ago(days=60)},
        {"kid": "k2", "status": "active", "created_at": ago(days=50)},
    ]
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    return FakeFxgate(tmp_path)


def actions(stdout: str) -> dict[str, str]:
    """`action=retire kid=k2 …` lines as {kid: action}."""
    found = {}
    for line in stdout.splitlines():
        fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
        if "kid" in fields:
            found[fields["kid"]] = fields["action"]
    return found


def test_rotate_keys_rotates_then_retires_only_keys_out_of_service_past_grace(
    fake: FakeFxgate,
) -> None:
    """The script rotates, then has ``fxgate keys prune`` retire with the grace, and
    shows what the CLI did; what the rotation printed (key material, for all it knows)
    is not passed on."""
    result = fake.run("rotate-keys")

    assert result.returncode == 0, result.stderr
    assert fake.calls() == [["keys", "rotate"], ["keys", "prune", "--grace", "86400"]]
    assert fake.statuses() == {"k1": "retired", "k2": "standby", "k-new": "active"}
    assert result.stdout == "action=rotate\n" + PRUNE_OUTPUT.format(grace=86400)
    assert actions(result.stdout) == {"k-new": "active", "k2": "retire", "k3": "keep"}
    assert "SECRET" not in result.stdout + result.stderr


def test_rotate_keys_dry_run_changes_nothing(fake: FakeFxgate) -> None:
    result = fake.run("rotate-keys", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert fake.calls() == [["keys", "prune", "--grace", "86400", "--dry-run"]]
    assert fake.statuses() == {"k1": "retired", "k2": "active"}
    assert result.stdout.startswith("action=rotate dry_run=yes skipped\n")


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--grace", "3600"], {}), (["--grace=3600"], {}), ([], {"FXGATE_KEY_GRACE_SECONDS": "3600"})],
)
def test_rotate_keys_grace_comes_from_the_flag_or_the_environment(
    fake: FakeFxgate, args: list[str], env: dict[str, str]
) -> None:
    result = fake.run("rotate-keys", *args, env=env)

    assert result.returncode == 0, result.stderr
    assert fake.calls()[1] == ["keys", "prune", "--grace", "3600"]
    assert "grace=3600s" in result.stdout


def test_rotate_keys_stops_when_the_cli_has_no_keys_prune(fake: FakeFxgate) -> None:
    """An fxgate too old for ``keys prune`` answers it with a usage error (exit 2): the
    run fails and says nothing was retired (the rotation itself stands, as with any
    failure after it)."""
    fake.dir.joinpath("fxgate").write_text(
        FAKE_FXGATE.format(python=sys.executable).replace('["keys", "prune"]', '["no", "prune"]')
    )
    result = fake.run("rotate-keys")

    assert result.returncode == 1
    assert "fxgate keys prune failed (exit 2); nothing retired" in result.stderr
    assert fake.calls() == [["keys", "rotate"], ["keys", "prune", "--grace", "86400"]]


@pytest.mark.parametrize("failure", ["rotate", "prune"])
def test_rotate_keys_retires_nothing_when_rotation_or_listing_fails(
    fake: FakeFxgate, failure: str
) -> None:
    result = fake.run("rotate-keys", env={"FAKE_FAIL": failure})

    assert result.returncode == 1
    assert "nothing retired" in result.stderr
    if failure == "rotate":
        assert fake.calls() == [["keys", "rotate"]]


def test_rotate_keys_carries_on_past_a_failed_retirement_and_says_so(fake: FakeFxgate) -> None:
    """``keys prune`` goes on past a key it could not retire and exits 1; the script
    shows its lines and fails too."""
    result = fake.run("rotate-keys", "--grace", "3600", env={"FAKE_FAIL": "retire"})

    assert result.returncode == 1
    assert "nothing retired" not in result.stderr
    assert "action=summary retired=1" in result.stdout


@pytest.mark.parametrize("args", [["--grace", "1d"], ["--frobnicate"]])
def test_rotate_keys_refuses_bad_arguments(fake: FakeFxgate, args: list[str]) -> None:
    result = fake.run("rotate-keys", *args)

    assert result.returncode == 2
    assert fake.calls() == []


USER = ["--email", "ann@example.com", "--name", "Ann Lee", "--role", "trader"]


def test_create_user_pipes_the_password_and_keeps_it_out_of_argv(fake: FakeFxgate) -> None:
    result = fake.run("create-user", *USER, input="s3cret pass\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "u-1\n"
    assert fake.calls() == [["users", "add", *USER, "--password-stdin"]]
    assert (fake.dir / "stdin").read_text() == "s3cret pass\n"


def test_create_user_reads_the_password_from_a_file_descriptor(fake: FakeFxgate) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"from-fd")  # no trailing newline
    os.close(write_end)
    try:
        result = fake.run(
            "create-user", *USER, "--password-fd", str(read_end), pass_fds=(read_end,)
        )
    finally:
        os.close(read_end)

    assert result.returncode == 0, result.stderr
    assert (fake.dir / "stdin").read_text() == "from-fd\n"


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        ([*USER, "--password", "s3cret"], "s3cret\n"),
        (USER[:4], "s3cret\n"),  # no --role
        (USER, "\n"),  # empty password
        (USER, ""),  # none at all
    ],
)
def test_create_user_refuses_what_it_cannot_do_safely(
    fake: FakeFxgate, args: list[str], stdin: str
) -> None:
    result = fake.run("create-user", *args, input=stdin)

    assert result.returncode != 0
    assert fake.calls() == []
    assert "s3cret" not in result.stdout + result.stderr
