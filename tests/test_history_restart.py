"""The local bus's trading history in the store: ``since`` recovery across a restart.

A clean stop keeps the epoch and every stream's offset, so a client resumes across it
with exactly the messages it missed; a crash (SIGKILL) may have lost the last entries
before they were written, so the next start takes a new epoch and resuming clients get
``recovered: false`` and a snapshot, never a silent gap.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Daemon, Daemons
from tests.wsclient import Client

HTTP = httpx.Client(timeout=10)


def publish_alert(d: Daemon, user: str, title: str) -> None:
    r = HTTP.post(
        d.url("/api/v1/publish"),
        json={
            "channel": "alerts",
            "userId": user,
            "data": {"type": "INFO", "severity": "INFO", "title": title, "message": title},
        },
        headers={"Authorization": f"Bearer {d.token('admin_' + user, 'admin')}"},
    )
    assert r.status_code == 200, r.text


async def connect(d: Daemon, user: str) -> Client:
    c = await Client.connect(d.ws_url() + "?token=" + d.token(user))
    await c.type("connection")
    return c


def alerts(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in msgs if m.get("type") == "alert" and not m["data"].get("snapshot")]


async def test_since_recovers_across_a_clean_restart_and_not_across_a_crash(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    d = make_daemon.new(tmp_path / "state", quiet=True).start()
    user = "hist_user"
    async with await connect(d, user) as c:
        await c.subscribe("alerts")
        publish_alert(d, user, "seen")
        (seen,) = alerts(await c.barrier())
    publish_alert(d, user, "missed-1")
    publish_alert(d, user, "missed-2")
    d.stop()
    d.start()
    publish_alert(d, user, "after")
    async with await connect(d, user) as c:
        since = {"offset": seen["offset"], "epoch": seen["epoch"]}
        ack = await c.subscribe({"name": "alerts", "since": since})
        assert ack["channels"][0]["recovered"] is True
        got = alerts(await c.barrier())
        assert [m["data"]["title"] for m in got] == ["missed-1", "missed-2", "after"]
        assert [m["offset"] for m in got] == [seen["offset"] + i for i in (1, 2, 3)]
        assert {m["epoch"] for m in got} == {seen["epoch"]}
        last = got[-1]

    d.stop(signal.SIGKILL)
    d.start()
    publish_alert(d, user, "after-crash")
    async with await connect(d, user) as c:
        since = {"offset": last["offset"], "epoch": last["epoch"]}
        ack = await c.subscribe({"name": "alerts", "since": since})
        assert ack["channels"][0]["recovered"] is False
        await c.barrier()
        await c.subscribe("orders")
        publish_alert(d, user, "next")
        (nxt,) = alerts(await c.barrier())
        assert nxt["epoch"] != last["epoch"]


async def test_a_gap_larger_than_recovery_max_messages_gets_a_snapshot(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    d = make_daemon.new(tmp_path / "state", quiet=True, FXGATE_WS_RECOVERY_MAX_MESSAGES="2")
    d.start()
    user = "cap_user"
    async with await connect(d, user) as c:
        await c.subscribe("alerts")
        publish_alert(d, user, "seen")
        (seen,) = alerts(await c.barrier())
    since = {"offset": seen["offset"], "epoch": seen["epoch"]}
    publish_alert(d, user, "one")
    publish_alert(d, user, "two")
    async with await connect(d, user) as c:
        ack = await c.subscribe({"name": "alerts", "since": since})
        assert ack["channels"][0]["recovered"] is True
        assert len(alerts(await c.barrier())) == 2
    publish_alert(d, user, "three")
    async with await connect(d, user) as c:
        ack = await c.subscribe({"name": "alerts", "since": since})
        assert ack["channels"][0]["recovered"] is False
