"""The built-in plugins are written with the public plugin API and nothing else.

They import ``fxgate.plugins.api`` (and domain types from ``fxgate.domain``), never the
node, the services or an adapter, so the node's insides can change without them, and
importing a plugin never drags the node (and its import circle) in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PLUGINS = sorted(p for p in (ROOT / "plugins").glob("*.py") if p.name != "__init__.py")
PUBLIC = {"fxgate.plugins.api"}


def fxgate_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "fxgate")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update([node.module] if node.module.split(".")[0] == "fxgate" else [])
    return found


def test_every_builtin_plugin_is_checked() -> None:
    from fxgate.plugins.manager import BUILTIN_PLUGINS

    assert {f"fxgate_plugins.{p.stem}" for p in PLUGINS} == set(BUILTIN_PLUGINS.values())


@pytest.mark.parametrize("path", PLUGINS, ids=lambda p: p.name)
def test_a_builtin_plugin_imports_only_the_public_api_and_the_domain(path: Path) -> None:
    imported = fxgate_imports(path)
    assert "fxgate.plugins.api" in imported
    outside = {m for m in imported if m not in PUBLIC and not m.startswith("fxgate.domain")}
    assert outside == set(), f"{path.name} reaches past the plugin API: {sorted(outside)}"


def test_importing_the_plugins_does_not_import_the_node() -> None:
    names = ", ".join(f"fxgate_plugins.{p.stem}" for p in PLUGINS)
    code = (
        f"import sys, {names}\n"
        "print(sorted(m for m in sys.modules if m in ('fxgate.node', 'fxgate.app.assembly')"
        " or m.startswith(('fxgate.brokers.', 'fxgate.store.', 'fxgate.bus.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"
