"""docs/mt5.md is the operator's contract for the ``mt5`` backend: every ``[mt5]`` key the
settings accept is in its table with the default the settings give it, and the README
sends readers there. The keys are read from the settings model, never listed here, so a
key added to ``[mt5]`` fails this test until the page documents it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fxgate.config.settings import Mt5Settings

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "mt5.md").read_text()
#: Only from the environment (FXGATE_MT5_PASSWORD), so not a row of the key table.
ENV_ONLY = {"password"}
KEYS = sorted(set(Mt5Settings.model_fields) - ENV_ONLY)


def documented() -> dict[str, str]:
    """``| `key` | default | meaning |`` rows of the "[mt5] section" table: key -> default."""
    section = re.search(r"^## Configuration: the `\[mt5\]` section\n(.*?)^## ", DOC, re.S | re.M)
    assert section is not None, "docs/mt5.md has no '## Configuration: the `[mt5]` section'"
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \|", section.group(1), re.M)
    return dict(rows)


@pytest.mark.parametrize("key", KEYS)
def test_every_mt5_key_is_documented_with_its_default(key: str) -> None:
    rows = documented()
    assert key in rows, f"docs/mt5.md: the [mt5] table needs a row for `{key}`"
    default = Mt5Settings().model_dump()[key]
    shown = rows[key].strip("`")
    if default is None:
        assert shown == "unset", (key, shown)
    else:
        assert json.loads(shown) == default, (key, shown, default)


def test_the_docs_name_no_mt5_key_that_does_not_exist() -> None:
    assert sorted(documented()) == KEYS


def test_the_password_is_documented_as_environment_only() -> None:
    assert "FXGATE_MT5_PASSWORD" in DOC


def test_the_readme_points_at_the_mt5_page() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running against MetaTrader 5", 1)[1].split("\n## ", 1)[0]
    assert "docs/mt5.md" in section
    assert "fxgate[mt5]" in section
    assert "fxgate[mt5linux]" in section
    assert "mt5linux://127.0.0.1:18812" in section
