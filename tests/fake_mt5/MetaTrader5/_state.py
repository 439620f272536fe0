"""The one terminal this process talks to (the real package also holds one connection
per process), created from ``FAKE_MT5_SCENARIO`` on first use and replaced by
``_control.reset``."""

from __future__ import annotations

from ._scenario import Scenario
from ._terminal import Terminal

_terminal: Terminal | None = None


def terminal() -> Terminal:
    global _terminal
    if _terminal is None:
        _terminal = Terminal(Scenario.from_env())
    return _terminal


def replace(new: Terminal) -> Terminal:
    global _terminal
    _terminal = new
    return new
