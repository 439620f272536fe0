"""How long the paper market takes per quote, measured rather than guessed.

Drives ``MarketSimulator.step`` for the ten default symbols over simulated time, the way
the daemon's driver does (a step every 50 ms), at a tick rate that gives hundreds of
quotes per second, and prints microseconds per generated quote. Then the same for
``CandleBuilder.update`` over those quotes.

    python bench/feed_speed.py [--rate 50] [--seconds 600]
"""

from __future__ import annotations

import argparse
import time

from fxgate.brokers.paper.feed import MarketSimulator
from fxgate.brokers.paper.hours import make_hours
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.services.candles import CandleBuilder

START = 1_704_708_000.0  # Monday 2024-01-08 10:00 UTC


def bench_feed(rate: float, seconds: float, hours: str, keep: list[Quote] | None = None) -> None:
    """Quotes are dropped after each step, as the daemon's driver does once it has
    published them: keeping 300,000 of them alive would time the garbage collector."""
    sim = MarketSimulator(
        DEFAULT_SYMBOLS, seed=1, hours=make_hours(hours), clock=lambda: START, tick_rate=rate
    )
    steps = int(seconds / 0.05)
    count = 0
    began = time.perf_counter()
    for i in range(1, steps + 1):
        quotes = sim.step(START + i * 0.05)
        count += len(quotes)
        if keep is not None:
            keep.extend(quotes)
    elapsed = time.perf_counter() - began
    print(
        f"feed ({hours}): {count} quotes in {elapsed:.3f} s over {steps} steps: "
        f"{elapsed / count * 1e6:.2f} us/quote, {elapsed / steps * 1e6:.1f} us/step "
        f"({count / seconds:.0f} quotes per simulated second)"
    )


def bench_candles(quotes: list[Quote]) -> None:
    builder = CandleBuilder()
    began = time.perf_counter()
    for q in quotes:
        builder.update(q)
    elapsed = time.perf_counter() - began
    print(f"candles (6 intervals): {elapsed / len(quotes) * 1e6:.2f} us/quote")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="ticks per second per symbol")
    parser.add_argument("--seconds", type=float, default=600.0, help="simulated seconds")
    args = parser.parse_args()
    bench_feed(args.rate, args.seconds, "24x7")
    bench_feed(args.rate, args.seconds, "forex")
    quotes: list[Quote] = []
    bench_feed(args.rate, args.seconds / 10, "24x7", keep=quotes)
    bench_candles(quotes)


if __name__ == "__main__":
    main()
