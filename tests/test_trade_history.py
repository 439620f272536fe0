"""The trades kept in memory for analytics give the numbers a fresh read of the whole deal
history gives, however the deals, the reads and the evictions interleave."""

from __future__ import annotations

import asyncio
import calendar
import random
from collections.abc import Sequence
from decimal import Decimal as D

import pytest

from fxgate.domain.trading import Deal, DealEntry, Side
from fxgate.services.analytics import Performance, closed_trades, performances
from fxgate.services.trade_history import TradeHistory

BALANCE = D("1000")
START = calendar.timegm((2024, 1, 29, 9, 0, 0, 0, 0, 0))  # a Monday morning, UTC


def make_deal(
    ticket: int,
    user: str,
    position: int,
    entry: DealEntry,
    at: float,
    profit: D = D(0),
    commission: D = D(0),
    swap: D = D(0),
) -> Deal:
    return Deal(
        ticket=ticket,
        order_ticket=ticket,
        position_ticket=position,
        user_id=user,
        symbol="EURUSD",
        side=Side.BUY if entry is DealEntry.IN else Side.SELL,
        entry=entry,
        volume=D("0.1"),
        price=D("1.1"),
        time=at,
        profit=profit,
        commission=commission,
        swap=swap,
    )


def from_scratch(deals: Sequence[Deal], user: str, now: float) -> dict[str, Performance]:
    mine = [d for d in deals if d.user_id == user]
    return performances(closed_trades(mine), initial_balance=BALANCE, now=now)


class Store:
    """The deals stored so far; a read returns a user's, after a turn of the loop (when
    ``gate`` is given, after the gate opens), as a store thread would."""

    def __init__(self) -> None:
        self.deals: list[Deal] = []
        self.gate: asyncio.Event | None = None
        self.fail = 0

    async def read(self, user: str) -> list[Deal]:
        snapshot = [d for d in self.deals if d.user_id == user]
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise ConnectionError("store down")
        return snapshot


def history_of(store: Store, max_users: int = 10) -> TradeHistory:
    return TradeHistory(store.read, max_users=max_users)


async def ask(history: TradeHistory, user: str, now: float) -> dict[str, Performance]:
    return await history.performances(user, initial_balance=BALANCE, now=now)


def a_day(n: int = 1) -> float:
    return float(START + n * 86400)


# -- the race between the first read and deal events ---------------------------------------


async def test_deals_announced_while_the_read_runs_count_once_and_none_is_lost() -> None:
    store = Store()
    d = [
        make_deal(1, "u", 100, DealEntry.IN, START, commission=D("-3")),
        make_deal(2, "u", 100, DealEntry.OUT, START + 60, profit=D("50"), commission=D("-3")),
        make_deal(3, "u", 101, DealEntry.IN, START + 120, commission=D("-2")),
        make_deal(4, "u", 101, DealEntry.OUT, START + 180, profit=D("-20"), commission=D("-2")),
        make_deal(5, "u", 102, DealEntry.IN, START + 240, commission=D("-1")),
        make_deal(6, "u", 102, DealEntry.OUT, START + 300, profit=D("7"), commission=D("-1")),
    ]
    history = history_of(store)
    store.deals += d[:4]  # deals 3 and 4 stored, not yet announced
    history.on_deal(d[0])
    history.on_deal(d[1])  # nobody asked yet: ignored, the store has them
    store.gate = asyncio.Event()
    asking = asyncio.create_task(ask(history, "u", a_day()))
    await asyncio.sleep(0)  # the read has taken its snapshot: deals 1-4
    history.on_deal(d[2])  # announced during the read, and in it
    history.on_deal(d[3])
    store.deals += d[4:5]
    history.on_deal(d[4])  # stored and announced after the snapshot
    store.gate.set()
    got = await asking
    assert got == from_scratch(d[:5], "u", a_day())
    assert got["ALL"].total_trades == 2
    assert got["ALL"].net_profit == D("20")  # 44 - 24: deal 3 charged once, 5 waits
    store.deals += d[5:]
    history.on_deal(d[5])  # kept current without reading again
    after = await ask(history, "u", a_day())
    assert after == from_scratch(d, "u", a_day())
    assert after["ALL"].net_profit == D("25")  # + 7 - 1 - 1
    assert history.reads == 1


async def test_callers_asking_during_a_read_share_it() -> None:
    store = Store()
    store.deals.append(make_deal(1, "u", 100, DealEntry.OUT, START, profit=D("5")))
    history = history_of(store)
    first, second = await asyncio.gather(ask(history, "u", a_day()), ask(history, "u", a_day()))
    assert first == second == from_scratch(store.deals, "u", a_day())
    assert history.reads == 1


async def test_a_failed_read_leaves_nothing_half_done() -> None:
    store = Store()
    store.deals.append(make_deal(1, "u", 100, DealEntry.OUT, START, profit=D("5")))
    store.fail = 1
    history = history_of(store)
    failed, waited = await asyncio.gather(
        ask(history, "u", a_day()), ask(history, "u", a_day()), return_exceptions=True
    )
    assert isinstance(failed, ConnectionError)
    assert waited == from_scratch(store.deals, "u", a_day())  # the waiter read again
    assert history.reads == 2


async def test_a_deal_announced_again_after_the_read_makes_the_user_read_again() -> None:
    store = Store()
    d1 = make_deal(1, "u", 100, DealEntry.IN, START, commission=D("-2"))
    d2 = make_deal(2, "u", 100, DealEntry.OUT, START + 60, profit=D("10"))
    store.deals += [d1, d2]
    history = history_of(store)
    await ask(history, "u", a_day())
    history.on_deal(d2)  # stored before the read, announced after it
    assert "u" not in history
    got = await ask(history, "u", a_day())
    assert got["ALL"].total_trades == 1
    assert got["ALL"].net_profit == D("8")
    assert history.reads == 2


async def test_a_deal_stamped_before_the_last_one_is_paired_in_time_order() -> None:
    # The clock stepped back: the from-scratch pairing sorts the deals by time, so the
    # entry of 13:00 belongs to the close of 14:30, not to the one of 12:30 that came after.
    store = Store()
    d1 = make_deal(1, "u", 100, DealEntry.OUT, START + 5.5 * 3600, profit=D("10"))
    late = make_deal(2, "u", 100, DealEntry.IN, START + 4 * 3600, commission=D("-4"))
    d3 = make_deal(3, "u", 100, DealEntry.OUT, START + 3.5 * 3600, profit=D("1"))
    history = history_of(store)
    store.deals.append(d1)
    await ask(history, "u", a_day())
    for deal in (late, d3):
        store.deals.append(deal)
        history.on_deal(deal)
    got = await ask(history, "u", a_day())
    assert got == from_scratch(store.deals, "u", a_day())
    assert [t.net for t in closed_trades(store.deals)] == [D("1"), D("6")]
    assert history.reads == 2


async def test_the_least_recently_used_user_is_dropped_and_read_again() -> None:
    store = Store()
    history = history_of(store, max_users=2)
    for i, user in enumerate("abc"):
        store.deals.append(make_deal(i + 1, user, 100 + i, DealEntry.OUT, START, profit=D(i)))
        await ask(history, user, a_day())
    assert "a" not in history
    assert ("b" in history, "c" in history) == (True, True)
    missed = make_deal(9, "a", 200, DealEntry.OUT, START + 60, profit=D("3"))
    store.deals.append(missed)
    history.on_deal(missed)  # not in memory: ignored, the next read finds it
    got = await ask(history, "a", a_day())
    assert got["ALL"].total_trades == 2
    assert history.reads == 4
    assert "b" not in history  # "c" was used more recently


async def test_a_period_follows_new_trades_and_starts_again_when_it_rolls_over() -> None:
    store = Store()
    history = history_of(store)
    tickets = iter(range(1, 100))

    async def close(at: float, net: str) -> dict[str, Performance]:
        deal = make_deal(next(tickets), "u", next(tickets), DealEntry.OUT, at, profit=D(net))
        store.deals.append(deal)
        history.on_deal(deal)
        return await ask(history, "u", at)

    monday = await close(START, "-100")
    assert (monday["DAY"].total_trades, monday["ALL"].total_trades) == (1, 1)
    monday = await close(START + 3600, "40")
    assert (monday["DAY"].total_trades, monday["DAY"].net_profit) == (2, D("-60"))
    tuesday = await close(a_day(), "30")
    assert (tuesday["DAY"].total_trades, tuesday["DAY"].net_profit) == (1, D("30"))
    assert tuesday["DAY"].max_drawdown == D("60") / 1000  # it opened 60 below the peak
    assert tuesday == from_scratch(store.deals, "u", a_day())
    assert history.reads == 1


# -- any history, any interleaving ------------------------------------------------------------

USERS = ("alice", "bob", "carol")
Step = tuple[str, str, int, int, int, int, bool, bool]


def random_steps(rng: random.Random) -> list[Step]:
    """Fills and questions for three users, with their clock steps (sometimes back)."""
    return [
        (
            rng.choice(["open", "add", "partial", "close", "ask"]),
            rng.choice(USERS),
            rng.randrange(8),  # which open position
            rng.randint(-5000, 5000),  # profit, cents
            rng.randint(-300, 0),  # commission, cents
            rng.choice([0, 1, 60, 3600, 6 * 3600, 86400, 3 * 86400, -3600]),  # clock step
            rng.random() < 0.3,  # stored, announced later
            rng.random() < 0.5,  # an ask: announce the backlog during its read (else after)
        )
        for _ in range(rng.randint(0, 60))
    ]


async def replay(steps: list[Step]) -> None:
    store = Store()
    history = history_of(store, max_users=2)
    backlog: list[Deal] = []  # stored, not yet announced: always the newest deals
    open_positions: dict[str, list[int]] = {u: [] for u in USERS}
    tickets = iter(range(10_000_000, 20_000_000))
    clock = float(START)

    def announce() -> None:
        while backlog:
            history.on_deal(backlog.pop(0))

    def fill(kind: str, user: str, pick: int, profit: int, commission: int, later: bool) -> None:
        """A deal stored, then announced now or (``later``) after the deals before it."""
        mine = open_positions[user]
        ticket = next(tickets)
        if kind == "open" or not mine:
            mine.append(ticket)
            position, entry = ticket, DealEntry.IN
        else:
            position = mine[pick % len(mine)]
            entry = DealEntry.IN if kind == "add" else DealEntry.OUT
            if kind == "close":
                mine.remove(position)
        cents = profit if entry is DealEntry.OUT else 0
        deal = make_deal(
            ticket, user, position, entry, clock, D(cents) / 100, D(commission) / 100, D("-0.1")
        )
        store.deals.append(deal)
        if later or backlog:
            backlog.append(deal)
        else:
            history.on_deal(deal)

    for kind, user, pick, profit, commission, step, later, during in steps:
        clock += step
        if kind != "ask":
            fill(kind, user, pick, profit, commission, later)
            continue
        now = clock + 3600
        announced = store.deals[: len(store.deals) - len(backlog)]
        asking = asyncio.create_task(ask(history, user, now))
        await asyncio.sleep(0)  # a read, if any, has taken its snapshot
        if during:
            announce()  # deals the read has, announced while it runs
            fill("close", user, pick, profit, commission, later=False)  # one it has not
        got = await asking
        # From memory: what was announced when it was asked; from the store: everything.
        assert got in (from_scratch(store.deals, user, now), from_scratch(announced, user, now))
        announce()
        assert await ask(history, user, now) == from_scratch(store.deals, user, now)
    announce()
    for user in USERS:
        for now in (clock, clock + 86400, clock + 40 * 86400):
            assert await ask(history, user, now) == from_scratch(store.deals, user, now)


@pytest.mark.parametrize("seeds", [range(i, 500, 5) for i in range(5)], ids=str)
def test_the_trades_in_memory_give_what_the_whole_history_gives(seeds: range) -> None:
    for seed in seeds:
        steps = random_steps(random.Random(seed))
        try:
            asyncio.run(replay(steps))
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {steps}") from exc


def test_at_least_one_user_is_kept() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TradeHistory(Store().read, max_users=0)
