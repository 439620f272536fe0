"""The ``[mt5]`` settings and their check: what ``fxgate config check`` and start-up
say about a MetaTrader 5 configuration, one line per problem, and a password that is
never shown."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from fxgate.app.validation import problems
from fxgate.brokers.mt5.factory import connect_kwargs
from fxgate.config.settings import Settings
from tests.conftest import ROOT, Daemon

FAKE = str(ROOT / "tests" / "fake_mt5")


def mt5_settings(**mt5: object) -> Settings:
    return Settings(broker={"backend": "mt5"}, mt5=mt5)  # type: ignore[arg-type]


def test_the_defaults_and_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings().mt5
    assert (s.poll_interval, s.trade_poll_interval, s.bridge, s.symbols) == (0.1, 0.25, "", [])
    monkeypatch.setenv("FXGATE_MT5_OWNER", "u_1")
    monkeypatch.setenv("FXGATE_MT5_LOGIN", "5001234")
    monkeypatch.setenv("FXGATE_MT5_SYMBOLS", '["EURUSD"]')
    monkeypatch.setenv("FXGATE_MT5_BRIDGE", "mt5linux://127.0.0.1:18812")
    s = Settings().mt5
    assert (s.owner, s.login, s.symbols, s.bridge) == (
        "u_1",
        5001234,
        ["EURUSD"],
        "mt5linux://127.0.0.1:18812",
    )


def test_the_password_is_never_shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FXGATE_MT5_PASSWORD", "s3cret-pw")
    s = Settings()
    assert "s3cret-pw" not in repr(s)
    assert "s3cret-pw" not in str(s.model_dump())
    assert connect_kwargs(s.mt5)["password"] == "s3cret-pw"  # only for initialize()
    monkeypatch.delenv("FXGATE_MT5_PASSWORD")
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    assert connect_kwargs(mt5_settings(password_file=str(pw)).mt5)["password"] == "from-file"


def test_the_check_names_each_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(FAKE)  # MetaTrader5 importable
    assert problems(mt5_settings(owner="u_1"), plugins=False) == []
    assert problems(mt5_settings(), plugins=False) == [
        "mt5.owner: required: the fxgate user id whose account this terminal is"
    ]
    (bad,) = problems(mt5_settings(owner="u_1", password_file="/nonexistent/pw"), plugins=False)
    assert bad.startswith("mt5.password_file: cannot read it")
    with pytest.raises(ValueError):
        mt5_settings(owner="u", poll_interval=0)


def test_a_missing_package_or_bridge_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # No MetaTrader5 (as on Linux; the fake may be imported already: hide it).
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)  # type: ignore[arg-type]
    assert problems(mt5_settings(owner="u"), plugins=False) == [
        "broker.backend = \"mt5\": MetaTrader5 is not installed (pip install 'fxgate[mt5]')"
    ]
    found = problems(mt5_settings(owner="u", bridge="http://x"), plugins=False)
    assert "mt5.bridge: must look like mt5linux://127.0.0.1:18812 (got 'http://x')" in found
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    found = problems(mt5_settings(owner="u", bridge=f"mt5linux://127.0.0.1:{port}"), plugins=False)
    assert any(line.startswith(f"mt5.bridge: cannot connect to 127.0.0.1:{port}") for line in found)


def test_serve_refuses_mt5_without_its_package_in_one_line(tmp_path: Path) -> None:
    env = {"FXGATE_BROKER_BACKEND": "mt5", "FXGATE_MT5_OWNER": "u_1"}
    out = Daemon(tmp_path, env=env).cli("config", "check")
    assert out.returncode == 1
    assert "MetaTrader5 is not installed (pip install 'fxgate[mt5]')" in out.stderr
    env["PYTHONPATH"] = os.pathsep.join([FAKE, str(ROOT)])
    ok = Daemon(tmp_path, env=env).cli("config", "check")
    assert ok.returncode == 0, ok.stderr
