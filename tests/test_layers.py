"""The import rules of DESIGN.md and docs/architecture.md, checked on the source.

Layers, top to bottom: ``cli → ops → app → web → node → protocol → hub → services →
domain``. A module may import its own package and the layers below it; the adapters
(``brokers``, ``store``, ``bus``) implement ports that ``services`` and ``hub`` define and
are imported by name only from ``fxgate.app``'s registries. The table below is the whole
rule: a new package, or a new arrow, is a line here that a reviewer sees.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fxgate"

#: package -> the fxgate packages it may import besides itself. ``config`` (the settings
#: schema) and ``domain`` sit under everything.
BASE = {"fxgate.domain", "fxgate.config"}
PORTS = {"fxgate.services.ports", "fxgate.bus.port"}
ALLOWED: dict[str, set[str]] = {
    "fxgate.domain": set(),
    "fxgate.config": {"fxgate.domain"},
    "fxgate.services": BASE,
    "fxgate.plugins": BASE | {"fxgate.services"},
    "fxgate.hub": BASE | {"fxgate.plugins", "fxgate.services"},
    "fxgate.bus": BASE | {"fxgate.hub", "fxgate.services.ports"},
    "fxgate.brokers": BASE | {"fxgate.services.ports"},
    "fxgate.store": BASE | {"fxgate.services.ports"},
    "fxgate.protocol": BASE | {"fxgate.hub", "fxgate.plugins", "fxgate.services"},
    "fxgate.node": BASE
    | PORTS
    | {"fxgate.app.tasks", "fxgate.hub", "fxgate.plugins", "fxgate.protocol", "fxgate.services"},
    "fxgate.web": BASE
    | {"fxgate.node", "fxgate.protocol", "fxgate.hub", "fxgate.plugins", "fxgate.services"},
    "fxgate.app": BASE
    | PORTS
    | {"fxgate.node", "fxgate.hub", "fxgate.plugins", "fxgate.services", "fxgate.protocol"},
    "fxgate.ops": BASE | {"fxgate.app", "fxgate.node", "fxgate.web", "fxgate.protocol"},
    "fxgate.cli": BASE
    | {"fxgate.app", "fxgate.ops", "fxgate.node", "fxgate.services", "fxgate.protocol"},
}

#: Third-party packages only one place may import (STYLE.md, "Habits").
ONLY_IN: dict[str, tuple[str, ...]] = {
    "tornado": ("fxgate.web",),
    "motor": ("fxgate.store.mongodb",),
    "pymongo": ("fxgate.store.mongodb",),
    "MetaTrader5": ("fxgate.brokers.mt5",),
    "mt5linux": ("fxgate.brokers.mt5",),
    # Socket.IO (seed 002): Engine.IO is a transport, the packet codec a dialect's.
    "engineio": ("fxgate.web",),
    "socketio": ("fxgate.protocol",),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, me: str | None = None) -> list[tuple[int, str]]:
    """Every absolute module name ``path`` (module ``me``) imports, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    here = (me or module_name(path)).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def owner(module: str) -> str:
    """The layer a module belongs to: the longest key of ``ALLOWED`` it is under."""
    best = ""
    for key in ALLOWED:
        if (module == key or module.startswith(key + ".")) and len(key) > len(best):
            best = key
    return best


def under(module: str, prefixes: set[str] | tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def upward_imports(path: Path, me: str) -> list[str]:
    layer = owner(me)
    if not layer:  # fxgate/__init__.py, __main__.py: the entry points
        return []
    wrong = []
    for line, target in imports_of(path, me):
        if not under(target, ("fxgate",)) or target == "fxgate":
            continue
        if under(target, (layer,)) or under(target, ALLOWED[layer]):
            continue
        wrong.append(f"line {line}: {target}")
    return wrong


@pytest.mark.parametrize("path", sources(), ids=lambda p: module_name(p))
def test_imports_point_one_way(path: Path) -> None:
    me = module_name(path)
    wrong = upward_imports(path, me)
    assert not wrong, f"{me} ({owner(me)}) may not import: {wrong}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: module_name(p))
def test_third_party_packages_stay_in_their_module(path: Path) -> None:
    me = module_name(path)
    for line, target in imports_of(path):
        top = target.split(".")[0]
        if top in ONLY_IN:
            assert under(me, ONLY_IN[top]), f"{me} line {line} imports {top}"


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a domain module importing a service, or a service importing
    an adapter (relative import included), is reported; a port import is not."""
    probe = tmp_path / "probe.py"
    probe.write_text("from fxgate.services.trading import TradingService\n")
    assert upward_imports(probe, "fxgate.domain.probe") == ["line 1: fxgate.services.trading"]
    probe.write_text("from ..brokers.paper import broker\nfrom .ports import broker\n")
    assert upward_imports(probe, "fxgate.services.probe") == ["line 1: fxgate.brokers.paper"]
