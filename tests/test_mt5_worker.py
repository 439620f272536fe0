"""The terminal's owner in a child process (``mt5.worker = "process"``, the default):
the package runs there and only plain answers cross; a dead child is a lost terminal
(DOWN, then a new child and the adapter back); an order whose answer was lost is not
sent twice; the child never outlives the daemon, on SIGTERM or ``kill -9``.

The fake terminal lives in the child, as the real package does: the tests drive it over
its HTTP control (``FAKE_MT5_CONTROL``), served from the child.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from fxgate.brokers.mt5.broker import Mt5Broker
from fxgate.brokers.mt5.process import ProcessTerminal, package_api
from fxgate.brokers.mt5.terminal import WORKER_LOST, TerminalError
from fxgate.domain.trading import OrderRequest, OrderStatus, OrderType, Side
from fxgate.store.sqlite import SQLiteStore
from tests.conftest import Daemons, until
from tests.fake_mt5 import RemoteControl, daemon_env, free_port

OWNER = "u_owner"
SCENARIO = {"random_ticks": False, "market_watch": ["EURUSD", "GBPUSD"]}


@dataclass
class Child:
    broker: Mt5Broker
    terminal: ProcessTerminal
    control: RemoteControl

    async def ctl(self, name: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.control.call, name, **kwargs)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def children(pid: int) -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


@pytest.fixture
async def child(tmp_path: Path) -> AsyncIterator[Child]:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    port = free_port()
    terminal = ProcessTerminal(package_api(""), env=daemon_env(SCENARIO, control_port=port))
    broker = Mt5Broker(
        terminal,
        store.trading,
        owner=OWNER,
        symbols=["EURUSD", "GBPUSD"],
        magic=777,
        poll_interval=3600,  # the tests poll with flush()
        trade_poll_interval=3600,
        reconnect_min=0.01,
        reconnect_max=0.05,
    )
    c = Child(broker, terminal, RemoteControl(port))
    await broker.start()
    try:
        yield c
    finally:
        await broker.stop()
        await store.close()


async def test_the_terminal_is_owned_by_a_child_process(child: Child) -> None:
    assert child.broker.health == "HEALTHY"
    pid = child.terminal.pid
    assert pid is not None
    assert pid != os.getpid()
    assert cmdline(pid)[-2:] == ["-m", "fxgate.brokers.mt5.worker"]  # what ps shows
    # The fake (the package) answers its control from the child: its ticks reach us.
    await child.ctl("set_price", symbol="EURUSD", bid=1.0849, ask=1.085)
    await child.broker.flush()
    quote = await child.broker.quote("EURUSD")
    assert (quote.bid, quote.ask) == (1.0849, 1.085)
    await child.broker.stop()
    assert not alive(pid)  # stopping the adapter ends its child


async def test_a_dead_worker_process_is_a_lost_terminal_and_a_new_one_takes_over(
    child: Child,
) -> None:
    first = child.terminal.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await child.broker.flush()
    assert child.broker.health == "DOWN"
    await until(lambda: child.broker.healthy, what="a new worker and the terminal back")
    assert child.terminal.pid not in (None, first)
    assert not alive(first)
    await child.ctl("set_price", symbol="GBPUSD", bid=1.2649, ask=1.265)
    await child.broker.flush()
    assert (await child.broker.quote("GBPUSD")).bid == 1.2649


def sleeper() -> ProcessTerminal:
    """A worker whose "package" is the ``time`` module: ``call("sleep", 60)`` blocks."""
    return ProcessTerminal(("importlib", "import_module", {"name": "time"}))


async def test_a_call_in_flight_when_the_worker_dies_fails_as_a_lost_terminal() -> None:
    terminal = sleeper()
    try:
        assert await terminal.call("monotonic") > 0
        first = terminal.pid
        assert first is not None
        job = asyncio.ensure_future(terminal.call("sleep", 60))
        await asyncio.sleep(0)  # the job is on the pipe
        os.kill(first, signal.SIGKILL)
        with pytest.raises(TerminalError) as lost:
            await asyncio.wait_for(job, 10)
        assert lost.value.code == WORKER_LOST
        assert lost.value.lost
        assert await terminal.call("monotonic") > 0  # the next call starts a new child
        assert terminal.pid not in (None, first)
        with pytest.raises(RuntimeError, match="KeyError"):  # a bug, not a lost terminal
            await terminal.run("no_such_job")
        assert terminal.pid is not None  # and the child carries on
    finally:
        await terminal.close()
    assert terminal.pid is None


PARENT = """
import asyncio, sys
from fxgate.brokers.mt5.process import ProcessTerminal

async def main():
    t = ProcessTerminal(("importlib", "import_module", {"name": "time"}))
    await t.call("monotonic")
    print(t.pid, flush=True)
    await t.call("sleep", 600)

asyncio.run(main())
"""


async def test_the_worker_ends_when_its_parent_is_killed_even_mid_call() -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    pid = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    assert alive(pid)
    parent.kill()
    await parent.wait()
    await until(lambda: not alive(pid), timeout=10, what="the orphaned worker gone")


@pytest.mark.parametrize("mode", ["timeout", "raise"])
async def test_an_order_sent_whose_answer_was_lost_is_not_sent_again(
    child: Child, mode: str
) -> None:
    await child.ctl("set_price", symbol="EURUSD", bid=1.0849, ask=1.085)
    await child.ctl("lose_answers", count=1, mode=mode)
    order = await child.broker.place_order(
        OWNER, OrderRequest("EURUSD", OrderType.MARKET, Side.BUY, D("0.1"))
    )
    assert order.status is OrderStatus.FILLED
    state = await child.ctl("state")
    assert state["positions"] == [order.ticket]  # one order executed, found again
    assert len(state["history_orders"]) == 1


def mt5_daemon(make_daemon: Daemons) -> Any:
    env = daemon_env(SCENARIO, control_port=free_port())
    return make_daemon(
        FXGATE_BROKER_BACKEND="mt5",
        FXGATE_MT5_OWNER=OWNER,
        FXGATE_MT5_SYMBOLS='["EURUSD"]',
        **env,
    )


def worker_of(daemon_pid: int) -> int:
    (pid,) = [p for p in children(daemon_pid) if "fxgate.brokers.mt5.worker" in cmdline(p)]
    return pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
async def test_the_worker_process_ends_with_the_daemon(make_daemon: Daemons, sig: int) -> None:
    d = mt5_daemon(make_daemon)
    assert d.proc is not None
    pid = worker_of(d.proc.pid)
    code = d.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    await until(lambda: not alive(pid), timeout=10, what="the worker process gone")


async def test_the_workers_log_lines_are_the_daemons(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    terminal = ProcessTerminal(package_api(""), env=daemon_env(SCENARIO))
    broker = Mt5Broker(terminal, store.trading, owner=OWNER, symbols=["EURUSD", "NOSUCH"],
                       poll_interval=3600, trade_poll_interval=3600)  # fmt: skip
    try:
        with caplog.at_level(logging.WARNING, logger="fxgate.brokers.mt5"):
            await broker.start()
        assert broker.healthy
        (line,) = [r for r in caplog.records if r.getMessage() == "mt5 symbol not found"]
        assert line.name == "fxgate.brokers.mt5.jobs"  # logged in the child, written here
        assert line.symbol == "NOSUCH"  # type: ignore[attr-defined]
    finally:
        await broker.stop()
        await store.close()
