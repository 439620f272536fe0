"""The MT5 adapter over the fake terminal, in process: what the conformance harness and
the fault tests build on.

The fake (``tests/fake_mt5/MetaTrader5``) holds one terminal per process, as the real
package does. One adapter per user needs one terminal each, so :class:`BoundTerminal`
is a module-like object that points the fake at its own terminal for the length of
each call (under one lock: the fake's calls are quick and the adapters' workers are the
only callers). The adapter takes any object with the package's functions, as it takes
the ``mt5linux`` client. Driving the fake from the test's own process needs the worker
in that process too: these adapters run their terminal in a thread
(:class:`~fxgate.brokers.mt5.thread.ThreadTerminal`, ``mt5.worker = "thread"``); the
default child process is tested over the fake's HTTP control (``test_mt5_worker.py``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

FAKE = Path(__file__).resolve().parents[1] / "fake_mt5"
if str(FAKE) not in sys.path:
    sys.path.insert(0, str(FAKE))

import MetaTrader5  # noqa: E402  (the fake, from the path above)
from MetaTrader5 import _state  # noqa: E402
from MetaTrader5._scenario import Scenario  # noqa: E402
from MetaTrader5._terminal import USER as FAKE_USER  # noqa: E402, F401  (for tests)
from MetaTrader5._terminal import Terminal as FakeTerminal  # noqa: E402

from fxgate.brokers.mt5.broker import Mt5Broker  # noqa: E402
from fxgate.brokers.mt5.thread import ThreadTerminal  # noqa: E402
from fxgate.domain.market import DEFAULT_SYMBOLS  # noqa: E402
from fxgate.services.ports.store.trading import TradingStore  # noqa: E402

SYMBOLS = [s.symbol for s in DEFAULT_SYMBOLS]
_SWAP = threading.Lock()


def fake_terminal(*, priced: bool = True, **scenario: Any) -> FakeTerminal:
    """A fake terminal whose prices move only when a test sets them; ``priced=False``:
    no symbol has had a tick yet (a terminal started while the market was quiet)."""
    base: dict[str, Any] = {"random_ticks": False, "market_watch": SYMBOLS, "priced": priced}
    return FakeTerminal(Scenario.from_mapping({**base, **scenario}))


class BoundTerminal:
    """The fake package's functions, acting on one given terminal."""

    def __init__(self, terminal: FakeTerminal) -> None:
        self.terminal = terminal

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(MetaTrader5, name)
        fake = self.terminal

        def call(*args: Any, **kwargs: Any) -> Any:
            with _SWAP, _state.use(fake):
                return fn(*args, **kwargs)

        return call


def make_adapter(fake: FakeTerminal, store: TradingStore, owner: str, **kwargs: Any) -> Mt5Broker:
    api = BoundTerminal(fake)
    options: dict[str, Any] = {
        "symbols": SYMBOLS,
        "magic": 777,
        "poll_interval": 3600,  # the tests poll with flush()
        "trade_poll_interval": 3600,
        "reconnect_min": 0.01,
        "reconnect_max": 0.05,
        **kwargs,
    }
    return Mt5Broker(ThreadTerminal(lambda: api), store, owner=owner, **options)
