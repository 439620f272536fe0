"""How long the market service's driver sleeps between steps (``sleep_for``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

import fxgate.services.market as market
from fxgate.domain.market import Quote, SymbolSpec
from fxgate.services.market import MAX_SLEEP, MIN_SLEEP, MarketService, sleep_for


def test_a_scheduled_source_sleeps_exactly_until_its_next_tick_however_near() -> None:
    assert sleep_for(100.0003, 100.0, waking=False) == pytest.approx(0.0003)
    assert sleep_for(100.1, 100.0, waking=False) == pytest.approx(0.1)
    assert sleep_for(105.0, 100.0, waking=False) == MAX_SLEEP


def test_a_tick_still_due_after_its_step_never_makes_the_driver_spin() -> None:
    assert sleep_for(100.0, 100.0, waking=False) == MIN_SLEEP
    assert sleep_for(99.0, 100.0, waking=False) == MIN_SLEEP


def test_a_waking_source_keeps_the_floor() -> None:
    """Its ``next_due`` only paces stale checks: a quote comes with a wake-up."""
    assert sleep_for(100.0003, 100.0, waking=True) == MIN_SLEEP
    assert sleep_for(100.1, 100.0, waking=True) == pytest.approx(0.1)


class TwoTicks:
    """Ticks 0.3 ms apart, on a clock of its own."""

    specs: Mapping[str, SymbolSpec] = {}

    def __init__(self) -> None:
        self.now = 1000.0
        self.due = [1000.0, 1000.0003]

    def step(self, now: float) -> list[Quote]:
        while self.due and self.due[0] <= now:
            self.due.pop(0)
        return []

    def next_due(self) -> float:
        return self.due[0] if self.due else self.now + 60

    def latest(self, symbol: str) -> Quote | None:
        return None

    def set_quote(self, symbol: str, bid: float, ask: float, now: float) -> Quote:
        raise NotImplementedError


async def test_the_driver_sleeps_the_gap_to_the_next_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    source = TwoTicks()
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        source.now += delay
        if len(slept) == 2:
            raise asyncio.CancelledError

    monkeypatch.setattr(market.asyncio, "sleep", sleep)
    service = MarketService(source, lambda event: None, clock=lambda: source.now)
    with pytest.raises(asyncio.CancelledError):
        await service.run()
    assert slept[0] == pytest.approx(0.0003)  # not the old 1 ms floor
    assert slept[1] == MAX_SLEEP  # nothing due for a minute: the periodic wake-up
