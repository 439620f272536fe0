"""The store's fence, between real daemons: an old leader that still believes it leads
cannot write once a newer leader has.

The split brain a Redis failover can cause, made on purpose: leader A is paused
(SIGSTOP) until B is elected and has written; then the lease key is given back to A, as
if A talked to a Redis that still had its key, and A resumes. Its own clock would stop it
(the pause outlasted the lease), so the nodes run with ``FXGATE_TEST_NO_CLOCK_FENCE``:
only the store's fencing-token check is left between A and the trading records.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import until
from tests.redis_fixtures import RedisServer
from tests.test_cluster_nodes import FENCED, leads
from tests.test_redis_bus import Cluster
from tests.trading_helpers import Trader

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def two(tmp_path: Path, redis_server: RedisServer) -> Iterator[Cluster]:
    if redis_server.proc is None:  # a failed fault test left it stopped
        redis_server.start()
    c = Cluster(tmp_path, redis_server)
    try:
        yield c
    finally:
        c.stop_all()


async def test_an_old_leader_resumed_after_a_newer_one_wrote_is_refused_by_the_store(
    two: Cluster, redis_server: RedisServer
) -> None:
    prefix = f"sf{os.getpid()}"
    env = {
        "FXGATE_BUS_REDIS_PREFIX": prefix,
        "FXGATE_BUS_LEADER_LEASE": "2",
        "FXGATE_TEST_NO_CLOCK_FENCE": "1",
    }
    a = two.node(**env).start()
    await until(lambda: leads(a), timeout=10, what="A elected")
    b = two.node(**env).start()
    r = redis.Redis(port=redis_server.port)
    try:
        a_lease = r.get(f"{prefix}:leader")
        assert a_lease is not None
        assert a.proc is not None
        a.proc.send_signal(signal.SIGSTOP)
        try:
            await until(lambda: leads(b), timeout=10, what="B elected")
            trader = Trader.issued(b)
            on_b = trader.buy(0.1, clientOrderId="by-b")  # B's token is in the store now
            assert on_b["status"] == "filled"
            # A's Redis still names A: A renews, still_mine() holds, it runs commands.
            r.set(f"{prefix}:leader", a_lease, px=60_000)
        finally:
            a.proc.send_signal(signal.SIGCONT)
        late = Trader(a, trader.user_id, trader.token).post(
            "/trading/orders",
            {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.2,
             "clientOrderId": "by-a"},
        )  # fmt: skip
        assert late.status_code == 503, late.text
        assert late.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        await until(lambda: FENCED in a.log(), timeout=10, what="A's refused write reported")
        lines = a.log().splitlines()
        assert sum(FENCED in line for line in lines) == 1
        warning = next(line for line in lines if FENCED in line)
        assert "a newer trading leader has written" in warning, "the store refused, not the clock"
        assert "lost the trading lease (the store has seen a newer leader" in a.log()
        assert not [x for x in lines if "Traceback" in x]
        stored = Trader(a, trader.user_id, trader.token).orders()  # the store, on any node
        assert [o["clientOrderId"] for o in stored] == ["by-b"]
        assert Trader(b, trader.user_id, trader.token).orders() == stored
    finally:
        r.close()
