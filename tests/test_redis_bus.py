"""The Redis bus with real daemons and a real ``redis-server``: several nodes, one feed.

Every node here is a ``fxgate serve`` process with ``bus.backend = "redis"`` on the one
Redis of the module (``redis_server``) and one shared state directory (one SQLite file:
the users, keys and trading records every node reads). Events are published with the
admin publish API on one node and read by socket clients on the others.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Daemon, _issue, run_sync, until
from tests.redis_fixtures import RedisServer
from tests.trading_helpers import Admin, Trader
from tests.wsclient import Client

_n = itertools.count(1)


class Node(Daemon):
    """A daemon on the shared state directory; its log in a folder of its own."""

    def __init__(self, log_dir: Path, shared: Path, env: dict[str, str]) -> None:
        super().__init__(log_dir, {**env, "FXGATE_STATE_DIR": str(shared)})
        self.shared = shared

    def token(self, user: str, role: str = "trader", **_: Any) -> str:
        return str(run_sync(_issue(self.shared, user, role, None, "pro")))


class Cluster:
    def __init__(self, root: Path, redis: RedisServer) -> None:
        self.root = root
        self.shared = root / "shared"
        self.redis = redis
        self.nodes: list[Node] = []

    def node(self, **env: str) -> Node:
        n = Node(
            self.root / f"node{next(_n)}",
            self.shared,
            {
                "FXGATE_BUS_BACKEND": "redis",
                "FXGATE_BUS_REDIS_URL": self.redis.url,
                "FXGATE_BUS_REDIS_PREFIX": self.root.name.replace("-", "_")[-20:],
                "FXGATE_PAPER_TICK_RATE": "0.0001",
                "FXGATE_SERVER_RATE_LIMIT_PER_MINUTE": "100000",
                **env,
            },
        )
        self.nodes.append(n)
        return n

    def start(self, count: int) -> list[Node]:
        # One after the other: the first creates the schema and the signing key.
        return [self.node().start() for _ in range(count)]

    def stop_all(self) -> None:
        for n in self.nodes:
            if n.proc is not None:
                n.stop(timeout=5)


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[Cluster]:
    if redis_server.proc is None:  # a failed fault test left it stopped
        redis_server.start()
    c = Cluster(tmp_path, redis_server)
    try:
        yield c
    finally:
        c.stop_all()


HTTP = httpx.Client(timeout=10)


def publish_alert(node: Node, user: str, title: str) -> None:
    admin = node.token("admin_" + user, "admin")
    r = HTTP.post(
        node.url("/api/v1/publish"),
        json={
            "channel": "alerts",
            "userId": user,
            "data": {"type": "INFO", "severity": "INFO", "title": title, "message": title},
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 200, r.text


async def connect(node: Node, user: str, role: str = "trader") -> Client:
    c = await Client.connect(node.ws_url() + "?token=" + node.token(user, role))
    await c.type("connection")
    return c


async def alert(c: Client, title: str | None = None, timeout: float = 10) -> dict[str, Any]:
    return await c.wait_for(
        lambda m: (
            m.get("type") == "alert"
            and not m["data"].get("snapshot")
            and (title is None or m["data"]["title"] == title)
        ),
        timeout,
    )


def health(node: Node) -> dict[str, Any]:
    body: dict[str, Any] = HTTP.get(node.url("/health")).json()
    return body


async def test_an_event_published_on_one_node_reaches_every_node_once_same_offset(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.start(3)
    user = "fan_user"
    clients = [await connect(n, user) for n in (a, b, c)]
    for cl in clients:
        await cl.subscribe("alerts")
    publish_alert(a, user, "one")
    got = [await alert(cl, "one") for cl in clients]
    assert len({(m["offset"], m["epoch"], m["id"]) for m in got}) == 1
    publish_alert(c, user, "two")
    second = [await alert(cl, "two") for cl in clients]
    assert {m["offset"] for m in second} == {got[0]["offset"] + 1}
    for cl in clients:
        # Once: nothing more for this stream before the pong.
        assert [m for m in await cl.barrier() if m.get("type") == "alert"] == []
        await cl.close()
    assert all(health(n)["components"]["redis"] == "HEALTHY" for n in (a, b, c))


async def test_an_order_filled_on_one_node_reaches_the_clients_of_the_others(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.start(3)
    trader = Trader.issued(a, user_id="order_user")
    Admin(a).quote("EURUSD", "1.10000", "1.10010")
    clients = [await connect(n, trader.user_id) for n in (b, c)]
    for cl in clients:
        await cl.subscribe("orders", "trades")
    trader.buy(0.1)
    seen = []
    for cl in clients:
        got = await cl.read_until(
            lambda ms: (
                any(m.get("type") == "trade" for m in ms)
                and any(
                    m.get("type") == "order" and m["data"].get("status") == "FILLED" for m in ms
                )
            ),
            timeout=10,
        )
        live = [m for m in got if m.get("type") in ("order", "trade")]
        live = [m for m in live if not m["data"].get("snapshot")]
        assert {m["data"]["ticket"] for m in live} == {live[0]["data"]["ticket"]}
        seen.append([(m["channel"], m["offset"], m["epoch"], m["id"]) for m in live])
        await cl.close()
    assert seen[0] == seen[1]


async def test_a_burst_from_two_nodes_reaches_three_in_one_order_without_gaps(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.start(3)
    user = "burst_user"
    clients = [await connect(n, user) for n in (a, b, c)]
    for cl in clients:
        await cl.subscribe("alerts")

    def batch(node: Node, tag: str) -> None:
        events = [
            {
                "channel": "alerts",
                "userId": user,
                "data": {"type": "I", "severity": "INFO", "title": f"{tag}{i}", "message": "m"},
            }
            for i in range(150)
        ]
        admin = node.token("admin_" + tag, "admin")
        r = HTTP.post(
            node.url("/api/v1/publish"),
            json={"events": events},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 200, r.text

    await asyncio.gather(asyncio.to_thread(batch, a, "a"), asyncio.to_thread(batch, b, "b"))
    seen = []
    for cl in clients:
        got = await cl.read_until(lambda ms: len(alerts_of(ms)) >= 300, timeout=20)
        live = alerts_of(got)
        offsets = [m["offset"] for m in live]
        assert offsets == list(range(offsets[0], offsets[0] + 300))
        seen.append([(m["id"], m["offset"], m["epoch"]) for m in live])
        # Each node's own order: a's events in a's order, b's in b's.
        titles = [m["data"]["title"] for m in live]
        for tag in "ab":
            assert [t for t in titles if t[0] == tag] == [f"{tag}{i}" for i in range(150)]
        await cl.close()
    assert seen[0] == seen[1] == seen[2]


def alerts_of(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in msgs if m.get("type") == "alert" and not m["data"].get("snapshot")]


async def test_since_recovers_across_a_node_change_and_a_restart_of_every_node(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.start(3)
    user = "resume_user"
    async with await connect(a, user) as cl:
        await cl.subscribe("alerts")
        publish_alert(b, user, "seen")
        seen = await alert(cl, "seen")
    publish_alert(b, user, "missed-1")
    publish_alert(a, user, "missed-2")
    async with await connect(c, user) as watcher:  # both are through Redis already
        await watcher.subscribe("alerts")
        publish_alert(c, user, "marker")
        await alert(watcher, "marker")
    since = {"offset": seen["offset"], "epoch": seen["epoch"]}
    async with await connect(c, user) as cl:
        ack = await cl.subscribe({"name": "alerts", "since": since})
        assert ack["channels"][0]["recovered"] is True
        replay = [await alert(cl) for _ in range(3)]
        assert [m["data"]["title"] for m in replay] == ["missed-1", "missed-2", "marker"]
        assert [m["offset"] for m in replay] == [seen["offset"] + i for i in (1, 2, 3)]
        last = replay[-1]

    for n in (a, b, c):
        n.stop()
    a.start()
    b.start()
    publish_alert(a, user, "after-restart")
    async with await connect(b, user) as cl:
        since = {"offset": last["offset"], "epoch": last["epoch"]}
        ack = await cl.subscribe({"name": "alerts", "since": since})
        assert ack["channels"][0]["recovered"] is True
        got = await alert(cl)
        assert (got["data"]["title"], got["offset"], got["epoch"]) == (
            "after-restart",
            last["offset"] + 1,
            last["epoch"],
        )
        assert [m for m in await cl.barrier() if m.get("type") == "alert"] == []


async def test_redis_lost_and_back_empty_means_health_down_then_new_epochs_and_snapshots(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    a, b = cluster.start(2)
    user = "fault_user"
    async with await connect(a, user) as cl:
        await cl.subscribe("alerts")
        publish_alert(a, user, "before")
        before = await alert(cl, "before")

        redis_server.stop()
        down = await until(
            lambda: (h := health(a))["components"].get("redis") == "DOWN" and h,
            timeout=10,
            what="redis DOWN in /health",
        )
        assert down["components"]["bus"] == "DOWN"
        metrics = HTTP.get(a.url("/metrics")).text
        assert 'fxgate_component_up{component="redis"} 0.0' in metrics
        # The node's own events still reach its own clients, on an epoch of their own.
        publish_alert(a, user, "while-down")
        local = await alert(cl, "while-down")
        assert local["epoch"] != before["epoch"]
        # And the market data the node still receives (its own feed) reaches them.
        await cl.subscribe({"name": "market-data", "filters": {"symbol": "EURUSD"}})
        Admin(a).quote("EURUSD", "1.20000", "1.20010")
        tick = await cl.wait_for(
            lambda m: m.get("type") == "market_data" and not m["data"].get("snapshot")
        )
        assert tick["data"]["symbol"] == "EURUSD"

        redis_server.start()  # empty: everything Redis held is gone
        for n in (a, b):
            await until(
                lambda n=n: health(n)["components"].get("redis") == "HEALTHY",
                timeout=15,
                what="redis HEALTHY again",
            )
        publish_alert(b, user, "after")
        after = await alert(cl, "after")
        assert after["epoch"] not in (before["epoch"], local["epoch"])

    for since in (before, local):
        async with await connect(b, user) as cl:
            ack = await cl.subscribe(
                {"name": "alerts", "since": {"offset": since["offset"], "epoch": since["epoch"]}}
            )
            assert ack["channels"][0]["recovered"] is False
    # The new epoch recovers as usual.
    async with await connect(b, user) as cl:
        ack = await cl.subscribe(
            {"name": "alerts", "since": {"offset": after["offset"], "epoch": after["epoch"]}}
        )
        assert ack["channels"][0]["recovered"] is True
        assert [m for m in await cl.barrier() if m.get("type") == "alert"] == []


async def test_events_while_redis_stalls_reach_local_clients_and_no_one_resumes_across(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    a = cluster.node(FXGATE_BUS_REDIS_TIMEOUT="0.3").start()
    b = cluster.node(FXGATE_BUS_REDIS_TIMEOUT="0.3").start()
    user = "stall_user"
    here, there = await connect(a, user), await connect(b, user)
    for cl in (here, there):
        await cl.subscribe("alerts")
    publish_alert(a, user, "before")
    before = [await alert(cl, "before") for cl in (here, there)]
    assert before[0]["offset"] == before[1]["offset"]

    # Redis keeps its data but answers nothing for 2 s: a's publish times out.
    assert redis_server.command("CLIENT", "PAUSE", "2000", "ALL").startswith(b"+OK")
    publish_alert(a, user, "during")
    during = await alert(here, "during")  # a's own client still gets it, at once
    assert during["epoch"].startswith("local-")
    assert "fxgate_bus_local_deliveries_total 1.0" in HTTP.get(a.url("/metrics")).text
    await until(
        lambda: health(a)["components"].get("redis") == "DOWN", timeout=10, what="redis DOWN"
    )
    await until(
        lambda: (
            health(a)["components"].get("redis") == "HEALTHY"
            and health(b)["components"].get("redis") == "HEALTHY"
        ),
        timeout=15,
        what="redis HEALTHY again",
    )
    publish_alert(a, user, "after")
    after = [await alert(cl, "after") for cl in (here, there)]
    # The stream got a new epoch in Redis: b's client, who never saw "during", cannot
    # resume across it; nor can a's from its local epoch.
    assert after[0]["epoch"] == after[1]["epoch"] != before[0]["epoch"]
    for cl in (here, there):
        await cl.close()
    for node, since in ((b, before[1]), (a, during), (b, during)):
        async with await connect(node, user) as cl:
            ack = await cl.subscribe(
                {"name": "alerts", "since": {"offset": since["offset"], "epoch": since["epoch"]}}
            )
            assert ack["channels"][0]["recovered"] is False


def test_redis_unreachable_at_start_is_one_clear_line(tmp_path: Path) -> None:
    from tests.conftest import free_port

    node = Node(
        tmp_path / "n",
        tmp_path / "shared",
        {
            "FXGATE_BUS_BACKEND": "redis",
            "FXGATE_BUS_REDIS_URL": f"redis://:hunter2@127.0.0.1:{free_port()}/0",
            "FXGATE_BUS_REDIS_TIMEOUT": "0.5",
        },
    )
    with pytest.raises(RuntimeError):
        node.start(timeout=20)
    log = node.log()
    lines = [line for line in log.splitlines() if "cannot start" in line]
    assert len(lines) == 1, log
    assert "bus.redis_url: Redis at redis://:***@127.0.0.1" in lines[0]
    assert "unreachable" in lines[0]
    assert "hunter2" not in log
    assert "Traceback" not in log


async def test_the_system_channel_says_redis_is_down(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    (a,) = cluster.start(1)
    async with await connect(a, "sys_admin", "admin") as admin:
        await admin.subscribe("system")
        redis_server.stop()
        try:
            msg = await admin.wait_for(
                lambda m: (
                    m.get("type") == "system"
                    and m["data"].get("components", {}).get("redis") == "DOWN"
                ),
                timeout=15,
            )
            assert msg["data"]["components"]["bus"] == "DOWN"
        finally:
            redis_server.start()


def test_config_check_names_a_bad_redis_url() -> None:
    from fxgate.app.validation import problems
    from fxgate.config.settings import BusSettings, Settings

    bad = Settings(bus=BusSettings(backend="redis", redis_url="http://u:pw@h:6379"))
    assert problems(bad, plugins=False) == [
        "bus.redis_url: 'http://u:***@h:6379' is not a redis://, rediss://, unix:// or"
        " redis+sentinel:// URL"
    ]
    good = Settings(bus=BusSettings(backend="redis", redis_url="rediss://h:6380/1"))
    assert problems(good, plugins=False) == []
