"""``[tiers]`` and ``[dashboard]``: checked by the one validation, overridable from the
environment, and the tier a token's claim names (an unknown one gets the default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fxgate.app.validation import problems
from fxgate.config.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_example_config_has_three_tiers_and_is_valid() -> None:
    s = load_settings(ROOT / "etc" / "fxgate.toml")
    assert sorted(s.tiers) == ["enterprise", "free", "pro"]
    assert "analytics" not in s.tiers["free"].types
    assert s.dashboard.max_messages_per_second == 100
    assert problems(s, plugins=False) == []


def test_bad_tiers_are_named() -> None:
    s = Settings(tiers={"gold": {"types": ["market_data", "weather"]}})
    found = problems(s, plugins=False)
    assert any(line.startswith("dashboard.default_tier:") for line in found), found
    assert any(line.startswith("tiers.gold.types: unknown types ['weather']") for line in found)


def test_tiers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    tiers = {"free": {"symbols": ["EURUSD"]}, "vip": {"market_data_per_second": 50}}
    monkeypatch.setenv("FXGATE_TIERS", json.dumps(tiers))
    monkeypatch.setenv("FXGATE_DASHBOARD_INTERVAL", "0.5")
    s = load_settings()
    assert s.tier("vip")[1].market_data_per_second == 50
    assert s.tier("free")[1].symbols == ["EURUSD"]
    assert s.tier("platinum")[0] == "free"  # unknown: the default tier, never more
    assert s.dashboard.interval == 0.5
