"""The docs are contracts: every hook is documented, and the example plugin runs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy

from fxgate.plugins import hookspecs
from tests.conftest import Daemon
from tests.wsclient import Client

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_DOC = (ROOT / "docs" / "plugins.md").read_text()


def hook_names() -> list[str]:
    marker = pluggy.HookspecMarker("fxgate")
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, marker.project_name + "_spec", None) is not None
    ]


def test_every_hook_has_a_docstring_and_a_section_in_the_docs() -> None:
    names = hook_names()
    assert set(names) == {
        "register_channels",
        "register_routes",
        "startup",
        "health_checks",
        "shutdown",
    }
    for name in names:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
        assert f"### `{name}(" in PLUGINS_DOC, name


async def test_the_documented_example_plugin_works(tmp_path: Path) -> None:
    code = re.search(
        r"## A complete third-party channel plugin.*?```python\n(.*?)```", PLUGINS_DOC, re.S
    )
    assert code is not None
    (tmp_path / "fxgate_sessions.py").write_text(code.group(1))
    d = Daemon(
        tmp_path / "state",
        env={"FXGATE_PLUGINS": '["fxgate_sessions"]', "PYTHONPATH": f"{ROOT}:{tmp_path}"},
    ).start()
    try:
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
        import httpx

        health = httpx.get(d.url("/health")).json()
        assert health["components"]["sessions"] == "HEALTHY"
    finally:
        d.stop()
