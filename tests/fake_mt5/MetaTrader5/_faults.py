"""Faults a test can inject, as a real terminal and its pipe produce them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Faults:
    #: the next N calls (any function but ``last_error``) fail with this code
    fail_calls: int = 0
    fail_code: int = -10005
    fail_message: str = "IPC timeout"
    #: only these functions count and fail (empty: every function)
    fail_only: set[str] = field(default_factory=set)
    #: the terminal process is gone: ``initialize`` fails (-10003) and everything else
    #: -10004 until ``terminal_down`` is cleared *and* ``initialize`` is called again
    terminal_down: bool = False
    #: the terminal lost its trade server: ``terminal_info().connected`` False, 10031
    disconnected: bool = False
    #: the next N ``order_send`` calls execute, then the answer is lost
    lost_answers: int = 0
    #: "timeout": ``order_send`` returns None and ``last_error()`` is -10005;
    #: "raise": it raises ``ConnectionResetError`` (a bridge that died mid-call)
    lost_mode: str = "timeout"
    #: the next N market ``order_send`` calls are answered 10004 (requote), not executed
    requotes: int = 0
    #: symbols whose market is closed (10018) regardless of the schedule
    closed: set[str] = field(default_factory=set)
