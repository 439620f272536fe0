"""``bus.redis_url = "redis+sentinel://..."``: the Redis bus through Sentinel, with a real
master, replica and sentinel (``tests/redis_fixtures.py``'s ``SentinelSet``), a real
daemon and a real socket client; and the URL's parsing and validation, in memory."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fxgate.app.validation import problems
from fxgate.config.redis_url import parse_sentinel, redacted
from fxgate.config.settings import BusSettings, Settings
from tests.conftest import until
from tests.redis_fixtures import RedisServer, SentinelSet
from tests.test_redis_bus import Node, alert, connect, health, publish_alert

SECRET = "s3ntinel-pw"


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    s = SentinelSet(tmp_path / "redis", SECRET)
    try:
        yield s.start()
    finally:
        s.stop()


def bus_up(node: Node) -> bool:
    body = health(node)
    return body["components"].get("bus") == "HEALTHY" and body["components"].get("redis") == (
        "HEALTHY"
    )


def subscribed(s: SentinelSet, port: int, channel: str) -> bool:
    numsub: list[Any] = s.client(port).pubsub_numsub(channel)
    return bool(numsub and numsub[0][1] >= 1)


def lose_last(r: Any, prefix: str, user: str, offset: int) -> None:
    """Make the Redis ``r`` lack message ``offset`` of the user's alerts, as a replica
    that missed the last write does: meta and history both behind (one script writes
    both), the history's last id too."""
    meta, hist = f"{prefix}:{{alerts:{user}}}:m", f"{prefix}:{{alerts:{user}}}:h"
    r.hset(meta, "s", offset - 1)
    r.xdel(hist, f"{offset}-0")
    r.execute_command("XSETID", hist, f"{offset - 1}-0")


def sentinel_node(tmp_path: Path, sentinels: SentinelSet, prefix: str) -> Node:
    return Node(
        tmp_path / "node",
        tmp_path / "shared",
        {
            "FXGATE_BUS_BACKEND": "redis",
            "FXGATE_BUS_REDIS_URL": sentinels.url,
            "FXGATE_BUS_REDIS_PREFIX": prefix,
            "FXGATE_BUS_REDIS_TIMEOUT": "1",
            "FXGATE_PAPER_TICK_RATE": "0.0001",
            "FXGATE_SERVER_RATE_LIMIT_PER_MINUTE": "100000",
        },
    ).start()


async def test_the_bus_follows_a_sentinel_failover(tmp_path: Path, sentinels: SentinelSet) -> None:
    prefix = "sentinel_t"
    node = sentinel_node(tmp_path, sentinels, prefix)
    try:
        await until(lambda: bus_up(node), timeout=10, what="bus HEALTHY")
        user = "sentinel_user"
        async with await connect(node, user) as cl:
            await cl.subscribe("alerts")
            publish_alert(node, user, "before")
            before = await alert(cl, "before")
            old = sentinels.master.port
            assert subscribed(sentinels, old, f"{prefix}:bus")

            sentinels.failover()
            new = await until(
                lambda: sentinels.master_port() != old and sentinels.master_port(),
                timeout=15,
                what="the sentinel names a new master",
            )
            assert new == sentinels.replica.port
            # The subscription moved to the new master, and the bus is UP again; within
            # seconds, not when Sentinel gets round to reconfiguring the old master
            # (ten seconds after the switch; writes there meanwhile would be lost).
            try:
                await until(
                    lambda: subscribed(sentinels, new, f"{prefix}:bus"),
                    timeout=8,
                    what="subscribed on the new master",
                )
            except AssertionError as exc:  # what the daemon did meanwhile, for the report
                raise AssertionError(f"{exc}\n--- daemon log ---\n{node.log()[-6000:]}") from None
            await until(lambda: bus_up(node), timeout=15, what="bus HEALTHY after failover")
            publish_alert(node, user, "after")
            after = await alert(cl, "after", timeout=15)
            # Written to the new master (its script loaded there): the same stream goes
            # on, in the epoch the replica had replicated.
            assert after["epoch"] == before["epoch"]
            assert after["offset"] == before["offset"] + 1
            meta = f"{prefix}:{{alerts:{user}}}:m"
            assert int(sentinels.client(new).hget(meta, "s")) == after["offset"]

            # A failover to a replica that missed the last write: Redis's offset is
            # behind what the node saw. The next message starts a new epoch, so it is
            # delivered (not dropped as already seen) and nobody resumes across it.
            # (Meta and history are written in one script, so both lack it.)
            lose_last(sentinels.client(new), prefix, user, after["offset"])
            publish_alert(node, user, "lost")
            lost = await alert(cl, "lost")
            assert lost["epoch"] != after["epoch"]
            assert not lost["epoch"].startswith("local-")  # through Redis, numbered there
        async with await connect(node, user) as cl:
            ack = await cl.subscribe(
                {"name": "alerts", "since": {"offset": after["offset"], "epoch": after["epoch"]}}
            )
            assert ack["channels"][0]["recovered"] is False
        assert "reconnecting" in node.log()
        # No password anywhere the daemon shows or writes.
        assert SECRET not in node.log()
        import httpx

        assert SECRET not in httpx.get(node.url("/health")).text
    finally:
        node.stop(timeout=5)


async def test_the_bus_comes_back_when_the_master_is_killed(
    tmp_path: Path, sentinels: SentinelSet
) -> None:
    node = sentinel_node(tmp_path, sentinels, "sentinel_k")
    try:
        await until(lambda: bus_up(node), timeout=10, what="bus HEALTHY")
        user = "killed_master_user"
        async with await connect(node, user) as cl:
            await cl.subscribe("alerts")
            publish_alert(node, user, "before")
            publish_alert(node, user, "last")
            before = await alert(cl, "before")
            last = await alert(cl, "last")
            meta = f"sentinel_k:{{alerts:{user}}}:m"
            replica = sentinels.client(sentinels.replica.port)
            await until(
                lambda: replica.hget(meta, "s") == str(last["offset"]).encode(),
                what="the replica has the last message",
            )
            # ... then loses it: the master dies before the replica had it.
            replica.config_set("replica-read-only", "no")
            lose_last(replica, "sentinel_k", user, last["offset"])
            old = sentinels.master.port
            sentinels.master.stop()  # kill -9: Sentinel sees it down, promotes the replica
            await until(lambda: sentinels.master_port() != old, timeout=20, what="a new master")
            new = sentinels.replica.port
            await until(
                lambda: subscribed(sentinels, new, "sentinel_k:bus"),
                timeout=15,
                what="subscribed on the new master",
            )
            # Back on the new master, the node finds the stream behind what it saw and
            # gives it a new epoch before anyone publishes to it.
            await until(
                lambda: replica.hget(meta, "e") != before["epoch"].encode(),
                timeout=10,
                what="a new epoch for the stream that lost its last message",
            )
            titles = itertools.count()

            async def through_redis() -> dict[str, Any] | None:
                # Until the node has seen Redis back, it delivers its own events here
                # (a local- epoch); then through Redis again.
                title = f"after{next(titles)}"
                publish_alert(node, user, title)
                got = await alert(cl, title)
                return None if got["epoch"].startswith("local-") else got

            try:
                after = await until(through_redis, timeout=15, interval=0.2, what="via Redis")
            except AssertionError as exc:  # what the daemon did meanwhile, for the report
                raise AssertionError(f"{exc}\n--- daemon log ---\n{node.log()[-6000:]}") from None
            assert after["epoch"] not in (last["epoch"], before["epoch"])
            await until(lambda: bus_up(node), timeout=15, what="bus HEALTHY again")
        async with await connect(node, user) as cl:
            ack = await cl.subscribe(
                {"name": "alerts", "since": {"offset": last["offset"], "epoch": last["epoch"]}}
            )
            assert ack["channels"][0]["recovered"] is False
        assert "Traceback" not in node.log()
    finally:
        node.stop(timeout=5)


# -- lost history ----------------------------------------------------------------------


def test_a_redis_behind_what_a_node_saw_starts_a_new_epoch(redis_server: RedisServer) -> None:
    """The failover case in small: the new master lacks the last writes, so its offset
    is behind what the publishing node saw in that epoch."""
    import redis

    from fxgate.bus.redis import PUBLISH_LUA, REWIND_LUA

    r = redis.Redis(port=redis_server.port)
    meta, hist = "lost:{alerts:u}:m", "lost:{alerts:u}:h"
    r.delete(meta, hist)
    publish = r.register_script(PUBLISH_LUA)
    rewind = r.register_script(REWIND_LUA)

    def send(seen_epoch: str, seen: int) -> tuple[int, str]:
        offset, epoch = publish(
            keys=[meta, hist], args=["{}", 100, 60, 600, "E2", "lost:bus", seen_epoch, seen]
        )
        return int(offset), epoch.decode()

    r.hset(meta, mapping={"e": "E1", "s": 5})
    assert send("E1", 5) == (6, "E1")  # in step: same epoch
    assert send("E1", 3) == (7, "E1")  # this node lags behind Redis: same epoch
    assert send("OTHER", 99) == (8, "E1")  # another epoch than Redis's: not a loss
    r.hset(meta, "s", 4)  # offsets 5..8 lost
    offset, epoch = send("E1", 8)
    assert (offset, epoch) == (5, "E2")
    assert r.xlen(hist) == 1  # the old epoch's history went with it

    r.hset(meta, mapping={"e": "E3", "s": 2})
    assert rewind(keys=[meta, hist], args=["E3", 2, "E4", 600]) == 0
    assert rewind(keys=[meta, hist], args=["E3", 3, "E4", 600]) == 1
    assert r.hget(meta, "e") == b"E4"


# -- the URL -----------------------------------------------------------------------------


def test_sentinel_url_parts() -> None:
    t = parse_sentinel("rediss+sentinel://u:p%40ss@h1:26380,[::1],h3/cache/2")
    assert t.sentinels == (("h1", 26380), ("::1", 26379), ("h3", 26379))
    assert (t.service, t.db, t.username, t.password, t.tls) == ("cache", 2, "u", "p@ss", True)
    t = parse_sentinel("redis+sentinel://h1/mymaster")
    assert (t.db, t.password, t.tls) == (0, None, False)
    assert redacted("redis+sentinel://:pw@h1:1,h2:2/m/0") == "redis+sentinel://:***@h1:1,h2:2/m/0"
    assert redacted("rediss://u:pw@h:6380/1") == "rediss://u:***@h:6380/1"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"


@pytest.mark.parametrize(
    ("url", "line"),
    [
        (
            "redis+sentinel://:pw@h1:26379/",
            "bus.redis_url: 'redis+sentinel://:***@h1:26379/' names no master",
        ),
        (
            "redis+sentinel://:pw@h1:x/m",
            "bus.redis_url: 'redis+sentinel://:***@h1:x/m' has a bad sentinel port 'x'",
        ),
        ("redis+sentinel://h1,/m", "bus.redis_url: 'redis+sentinel://h1,/m' names no sentinel"),
        ("redis+sentinel://h1/m/zero", "bus.redis_url: 'redis+sentinel://h1/m/zero' has a bad"),
        ("redis+sentinel://h1/m?x=1", "bus.redis_url: 'redis+sentinel://h1/m?x=1' takes no"),
        (
            "http://u:pw@h:6379",
            "bus.redis_url: 'http://u:***@h:6379' is not a redis://, rediss://, unix://"
            " or redis+sentinel:// URL",
        ),
    ],
)
def test_config_check_refuses_a_malformed_redis_url_in_one_line(url: str, line: str) -> None:
    found = problems(Settings(bus=BusSettings(backend="redis", redis_url=url)), plugins=False)
    (got,) = found
    assert got.startswith(line)
    assert "pw" not in got


def test_the_password_file(tmp_path: Path) -> None:
    from fxgate.bus.redis_client import connect as redis_client

    secret = tmp_path / "redis.pw"
    secret.write_text("from-a-file\n")
    ok = BusSettings(
        backend="redis", redis_url="redis+sentinel://h1/m", redis_password_file=str(secret)
    )
    assert problems(Settings(bus=ok), plugins=False) == []
    client = redis_client(ok, socket_timeout=1)
    assert client.connection_pool.connection_kwargs["password"] == "from-a-file"
    plain = BusSettings(backend="redis", redis_password_file=str(secret))
    client = redis_client(plain, socket_timeout=1)
    assert client.connection_pool.connection_kwargs["password"] == "from-a-file"

    both = ok.model_copy(update={"redis_url": "redis://:pw@h:6379/0"})
    assert problems(Settings(bus=both), plugins=False) == [
        "bus.redis_password_file: bus.redis_url has a password too; give it in one place"
    ]
    secret.write_text("")
    assert problems(Settings(bus=ok), plugins=False) == [
        f"bus.redis_password_file: {secret} is empty"
    ]
    gone = ok.model_copy(update={"redis_password_file": str(tmp_path / "nope")})
    (line,) = problems(Settings(bus=gone), plugins=False)
    assert line.startswith(f"bus.redis_password_file: cannot read {tmp_path / 'nope'}")


def test_config_check_show_redacts_the_redis_password(tmp_path: Path) -> None:
    from tests.conftest import Daemon

    url = f"redis+sentinel://:{SECRET}@h1:26379,h2/mymaster/1"
    out = Daemon(tmp_path, env={"FXGATE_BUS_REDIS_URL": url}).cli("config", "check", "--show")
    assert out.returncode == 0, out.stderr
    assert '"redis_url": "redis+sentinel://:***@h1:26379,h2/mymaster/1"' in out.stdout
    assert SECRET not in out.stdout + out.stderr


def test_no_sentinel_at_start_is_one_clear_line(tmp_path: Path) -> None:
    from tests.conftest import free_port

    port = free_port()
    node = Node(
        tmp_path / "n",
        tmp_path / "shared",
        {
            "FXGATE_BUS_BACKEND": "redis",
            "FXGATE_BUS_REDIS_URL": f"redis+sentinel://:{SECRET}@127.0.0.1:{port}/mymaster",
            "FXGATE_BUS_REDIS_TIMEOUT": "0.5",
        },
    )
    with pytest.raises(RuntimeError):
        node.start(timeout=20)
    log = node.log()
    lines = [line for line in log.splitlines() if "cannot start" in line]
    assert len(lines) == 1, log
    assert f"bus.redis_url: Redis master 'mymaster' via sentinels 127.0.0.1:{port}" in lines[0]
    assert "unreachable" in lines[0]
    assert SECRET not in log
    assert "Traceback" not in log
