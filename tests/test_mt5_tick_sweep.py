"""A tick sweep is all or nothing: a terminal lost after some symbols were read must not
move their cursors, or their ticks (thrown away with the error) would never arrive."""

from __future__ import annotations

from typing import Any

import pytest

from fxgate.brokers.mt5.jobs import read_ticks
from fxgate.brokers.mt5.terminal import TerminalError

IPC_TIMEOUT = -10005


def tick(msc: int, bid: float) -> dict[str, Any]:
    return {"time_msc": msc, "bid": bid, "ask": bid + 0.0001, "last": 0.0, "volume": 1}


class Terminal:
    """``copy_ticks_from`` for two symbols; GBPUSD's call fails while ``lost``."""

    def __init__(self) -> None:
        self.lost = True
        self.ticks = {"EURUSD": [tick(1_000, 1.1), tick(2_000, 1.2)], "GBPUSD": [tick(1_500, 1.3)]}

    def __call__(self, name: str, symbol: str, *_args: Any) -> Any:
        assert name == "copy_ticks_from"
        if symbol == "GBPUSD" and self.lost:
            raise TerminalError(IPC_TIMEOUT, "IPC timeout", name)
        return self.ticks[symbol]


def test_a_terminal_lost_mid_sweep_moves_no_cursor_and_loses_no_tick() -> None:
    cursors = {"EURUSD": (500, 0, True), "GBPUSD": (500, 0, True)}
    terminal = Terminal()
    with pytest.raises(TerminalError):
        read_ticks(terminal, cursors)  # type: ignore[arg-type]
    # EURUSD was read, but nothing was delivered: the caller has no cursor to move

    terminal.lost = False
    got, moved = read_ticks(terminal, cursors)  # type: ignore[arg-type]
    assert [t["time_msc"] for t in got["EURUSD"]] == [1_000, 2_000]
    assert [t["time_msc"] for t in got["GBPUSD"]] == [1_500]
    assert moved == {"EURUSD": (2_000, 1, True), "GBPUSD": (1_500, 1, True)}
    cursors.update(moved)
    assert read_ticks(terminal, cursors) == ({}, {})  # type: ignore[arg-type]  # once only
