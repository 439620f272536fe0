"""The one terminal this process talks to (the real package also holds one connection
per process), created from ``FAKE_MT5_SCENARIO`` on first use and replaced by
``_control.reset``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def use(other: Terminal) -> Iterator[Terminal]:
    """Point the module's functions at ``other`` for a while (several fake terminals in
    one process, e.g. one per adapter); the caller serialises calls across terminals."""
    global _terminal
    before = _terminal
    _terminal = other
    try:
        yield other
    finally:
        _terminal = before
