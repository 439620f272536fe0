"""Meta-tests: the contract suite calls every method of every store area, and each
backend's area classes implement their Protocol and nothing beside it.

So a method added to a port without a contract test fails here, and so does a backend
method that no port declares (the kind of method nobody calls). The suite is read
statically: a call ``<anything>.<area>.<method>(...)`` in a ``test_*.py`` module of this
folder counts, so the area tests call methods through the area attribute, unaliased.
"""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterable
from pathlib import Path

import pytest

from fxgate.services.ports.store import Store
from fxgate.store.mongodb import MongoStore
from fxgate.store.sqlite import SQLiteStore

HERE = Path(__file__).parent
SUITE = sorted(p for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)


def areas() -> dict[str, type]:
    """The bundle's area attributes and the Protocol each one returns, from ``Store``."""
    return {
        name: typing.get_type_hints(member.fget)["return"]
        for name, member in vars(Store).items()
        if isinstance(member, property) and name != "kind"
    }


AREAS = areas()


def protocol_methods(proto: type) -> set[str]:
    return {n for n, m in vars(proto).items() if not n.startswith("_") and callable(m)}


def called(paths: Iterable[Path]) -> set[tuple[str, str]]:
    """Every (area, method) called as ``x.<area>.<method>(...)`` in ``paths``."""
    calls: set[tuple[str, str]] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute)
            ):
                calls.add((node.func.value.attr, node.func.attr))
    return calls


def untested(paths: Iterable[Path]) -> list[str]:
    calls = called(paths)
    return sorted(
        f"{area}.{method}"
        for area, proto in AREAS.items()
        for method in protocol_methods(proto)
        if (area, method) not in calls
    )


def test_every_method_of_every_area_has_a_contract_test() -> None:
    assert untested(SUITE) == []


def test_the_check_notices_a_method_without_a_test(tmp_path: Path) -> None:
    suite = tmp_path / "test_one.py"
    suite.write_text("async def test_x(store):\n    await store.users.get('u1')\n")
    missing = untested([suite])
    assert "users.get" not in missing
    assert {"users.create", "trading.save", "sessions.revoke_jti"} <= set(missing)


def test_the_bundle_has_every_area() -> None:
    assert set(AREAS) == {
        "users",
        "api_keys",
        "signing_keys",
        "sessions",
        "audit",
        "trading",
        "candles",
        "strategies",
        "signals",
        "history",
        "usage",
    }
    assert all(protocol_methods(proto) for proto in AREAS.values())


@pytest.mark.parametrize(
    "store",
    [SQLiteStore(Path("unused.sqlite3")), MongoStore(uri="mongodb://unused:1")],
    ids=["sqlite", "mongodb"],
)
def test_each_backend_area_is_its_protocol_and_nothing_more(store: Store) -> None:
    for area, proto in AREAS.items():
        impl = type(getattr(store, area))
        public = {n for n in dir(impl) if not n.startswith("_")}
        assert public == protocol_methods(proto), f"{impl.__name__} vs {proto.__name__}"
