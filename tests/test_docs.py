"""The docs are contracts, checked against the code as Datasette's tests/test_docs.py
does: every hook the plugin manager knows is documented under its exact signature, the
docs name no hook that does not exist, and the documented example plugin runs.

The hook names and their parameters are read from the plugin manager (its ``hook``
attribute, filled from :mod:`fxgate.plugins.hookspecs`), never listed here: a hook that
is added, renamed or given other arguments fails these tests until docs/plugins.md
says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pluggy
import pytest

from fxgate.plugins import hookspecs
from fxgate.plugins.manager import make_plugin_manager
from tests.conftest import Daemons
from tests.wsclient import Client

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_DOC = (ROOT / "docs" / "plugins.md").read_text()
PM = make_plugin_manager(entry_points=False)
HOOKS = sorted(name for name in dir(PM.hook) if not name.startswith("_"))


def spec_of(name: str) -> tuple[tuple[str, ...], str]:
    """A hook's parameters and docstring, as the plugin manager holds its hookspec."""
    caller: pluggy.HookCaller = getattr(PM.hook, name)
    spec = caller.spec
    assert spec is not None, f"{name} is implemented but has no hookspec"
    return (*spec.argnames, *spec.kwargnames), spec.function.__doc__ or ""


def signature(name: str) -> str:
    """``name(arg, …)`` as the docs' heading writes it."""
    return f"{name}({', '.join(spec_of(name)[0])})"


def documented_hooks() -> dict[str, str]:
    """``### `name(args)``` headings of the docs' Hooks section: name -> signature."""
    section = re.search(r"^## Hooks\n(.*?)^## ", PLUGINS_DOC, re.S | re.M)
    assert section is not None, "docs/plugins.md has no '## Hooks' section"
    found = re.findall(r"^### `((\w+)\(.*?\))`", section.group(1), re.M)
    return {name: sig for sig, name in found}


def test_the_plugin_manager_knows_every_hookspec() -> None:
    """What the tests below iterate over is what the hookspecs module declares."""
    declared = {name for name in dir(hookspecs) if PM.parse_hookspec_opts(hookspecs, name)}
    assert declared
    assert set(HOOKS) == declared


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook: str) -> None:
    assert spec_of(hook)[1].strip(), f"{hook} has no docstring"
    assert documented_hooks().get(hook) == signature(hook), (
        f"docs/plugins.md needs a heading ### `{signature(hook)}`"
    )


def test_the_docs_name_no_hook_that_does_not_exist() -> None:
    assert sorted(documented_hooks()) == HOOKS


async def test_the_documented_example_plugin_works(tmp_path: Path, make_daemon: Daemons) -> None:
    code = re.search(
        r"## A complete third-party channel plugin.*?```python\n(.*?)```", PLUGINS_DOC, re.S
    )
    assert code is not None
    (tmp_path / "fxgate_sessions.py").write_text(code.group(1))
    d = make_daemon(FXGATE_PLUGINS='["fxgate_sessions"]', PYTHONPATH=f"{ROOT}:{tmp_path}")
    async with await Client.connect(d.ws_url() + f"?token={d.token('reader')}") as c:
        await c.recv()
        ack = await c.subscribe("fx-sessions")
        assert ack["channels"][0]["name"] == "fx-sessions"
        msg = await c.type("fx_session")
        assert msg["channel"] == "fx-sessions"
        assert msg["data"]["session"]
        await c.send(
            {"type": "subscribe", "channels": [{"name": "fx-sessions", "filters": {"nope": 1}}]}
        )
        assert (await c.type("error"))["message"] == "Invalid filter"
    health = httpx.get(d.url("/health")).json()
    assert health["components"]["sessions"] == "HEALTHY"
