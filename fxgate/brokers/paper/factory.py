"""The ``paper`` broker backend: the simulated market and the broker that trades on it."""

from __future__ import annotations

from fxgate.brokers.paper.broker import PaperBroker
from fxgate.brokers.paper.feed import MarketSimulator
from fxgate.brokers.paper.hours import make_hours
from fxgate.config.settings import Settings
from fxgate.domain.market import DEFAULT_SYMBOLS, SymbolSpec
from fxgate.services.ports.broker_backend import BrokerBackend
from fxgate.services.ports.store import Store

KNOWN = {s.symbol: s for s in DEFAULT_SYMBOLS}


def check(settings: Settings) -> list[str]:
    """Problems with the ``[paper]`` section, one line each."""
    unknown = [n for n in settings.paper.symbols if n not in KNOWN]
    if unknown:
        return [f"paper.symbols: unknown symbols {unknown}; known: {sorted(KNOWN)}"]
    return []


def build(settings: Settings, store: Store) -> BrokerBackend:
    s = settings.paper
    specs: list[SymbolSpec] = [KNOWN[n] for n in s.symbols]
    hours = make_hours(s.market_hours, specs)
    feed = MarketSimulator(specs, seed=s.seed, hours=hours, tick_rate=s.tick_rate)
    broker = PaperBroker(specs, store.trading, settings=s, is_open=hours.is_open)
    return BrokerBackend(broker, feed, broker.on_quote)
