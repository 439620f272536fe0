"""setup.cfg lists its packages by hand (``plugins/`` installs as ``fxgate_plugins``,
which ``find:`` cannot express), so a new sub-package that is not listed works in an
editable checkout and is missing from a real install. This keeps the list whole."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def listed() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}


def on_disk() -> set[str]:
    found = {"fxgate_plugins"}
    for init in (ROOT / "fxgate").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_package_is_listed_in_setup_cfg() -> None:
    assert on_disk() - listed() == set(), "add these to [options] packages in setup.cfg"


def test_setup_cfg_lists_no_package_that_is_gone() -> None:
    assert listed() - on_disk() == set()
