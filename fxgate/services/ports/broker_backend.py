"""What a broker backend's builder hands the assembly: the broker and its quote feed.

A backend is more than its :class:`~fxgate.brokers.port.Broker`: the paper broker
comes with the simulator that makes its prices and must see every quote to match
orders; the MT5 adapter will bring the terminal's ticks. The assembly wires the feed
into the market service and never learns which backend it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fxgate.brokers.port import Broker
from fxgate.domain.market import Quote
from fxgate.services.market import QuoteSource


@dataclass(frozen=True, slots=True)
class BrokerBackend:
    broker: Broker
    #: The prices the market service steps and publishes.
    quotes: QuoteSource
    #: Called with every quote once the broker has started (the paper broker matches on
    #: them); None for a backend that gets its prices on its own.
    on_quote: Callable[[Quote], None] | None = None
