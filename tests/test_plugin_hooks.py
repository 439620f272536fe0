"""Every hook fxgate defines is exercised by a test plugin in a real daemon.

As Datasette's tests/test_plugins.py does it: one ``test_hook_<name>`` per hook, and a
meta-test, over the hooks the plugin manager knows, that fails when a hook has no test
plugin implementing it or no such test. The test plugins are ``tests.plugins.ticker``
(channels, routes, a producer started at start-up; the shared ``daemon`` loads it) and
``tests.plugins.lifecycle`` (health and shutdown, in daemons of their own, so that the
shared daemon's components stay the built-in ones).
"""

from __future__ import annotations

import types

import httpx
import pytest

from fxgate.plugins.manager import make_plugin_manager
from tests.conftest import Daemon, Daemons
from tests.plugins import lifecycle, ticker
from tests.wsclient import Client

PM = make_plugin_manager(entry_points=False)
HOOKS = sorted(name for name in dir(PM.hook) if not name.startswith("_"))
TEST_PLUGINS: tuple[types.ModuleType, ...] = (ticker, lifecycle)
LIFECYCLE = '["tests.plugins.lifecycle"]'


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_plugin_and_a_test(hook: str) -> None:
    implementing = [m.__name__ for m in TEST_PLUGINS if PM.parse_hookimpl_opts(m, hook)]
    assert implementing, f"no test plugin implements {hook}"
    tests = [name for name in globals() if name.startswith("test_hook_") and hook in name]
    assert tests, f"no test_hook_…{hook}… in {__name__}"


async def connect(daemon: Daemon, user: str, role: str = "trader") -> Client:
    c = await Client.connect(daemon.ws_url() + f"?token={daemon.token(user, role)}")
    assert (await c.recv())["type"] == "connection"
    return c


async def test_hook_register_channels(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        ack = await c.subscribe("test-ticker", "test-vip")
        assert [ch["name"] for ch in ack["channels"]] == ["test-ticker", "test-vip"]
        # The channel's own snapshot, for this user.
        snap = await c.type("tick")
        assert snap["data"] == {"n": 0, "parity": "even", "hello": user, "snapshot": True}


async def test_hook_register_routes(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        await c.subscribe("test-vip")
        r = httpx.post(daemon.url("/test/vip"), params={"user": user, "text": "routed"})
        assert (r.status_code, r.json()) == (200, {"ok": True})
        assert (await c.type("vip"))["data"] == {"secret": "routed"}


async def test_hook_startup(daemon: Daemon, user: str) -> None:
    """The producer the plugin started at start-up keeps publishing, in order."""
    async with await connect(daemon, user) as c:
        await c.subscribe("test-ticker")
        ticks = await c.read_until(lambda got: len([m for m in got if m["type"] == "tick"]) >= 4)
        counts = [m["data"]["n"] for m in ticks if not m["data"].get("snapshot")]
        assert counts == list(range(counts[0], counts[0] + len(counts)))
        assert counts[0] > 0


def test_hook_health_checks_and_shutdown(make_daemon: Daemons) -> None:
    """One daemon for both: its plugin component shows in /health, and stopping it runs
    the shutdown hook."""
    d = make_daemon(FXGATE_PLUGINS=LIFECYCLE, TEST_LIFECYCLE_HEALTH="DEGRADED")
    body = httpx.get(d.url("/health")).json()
    assert body["components"]["test-lifecycle"] == "DEGRADED"
    assert body["status"] == "DEGRADED"
    assert lifecycle.SHUTDOWN_LINE not in d.log()
    assert d.stop() == 0
    assert lifecycle.SHUTDOWN_LINE in d.log()
