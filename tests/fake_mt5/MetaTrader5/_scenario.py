"""What the fake terminal starts with: the account, the symbols, the clock and the market.

A test builds one directly; the daemon subprocess reads it from ``FAKE_MT5_SCENARIO``
(a path to a JSON file, or the JSON itself), so a test configures a fake it cannot reach
into. Every key is optional.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

from fxgate.domain.market import DEFAULT_SYMBOLS

#: Market Watch at start: every default instrument but gold, so that a client which uses
#: XAUUSD must ``symbol_select`` it first, as on a real terminal.
_MARKET_WATCH = [s.symbol for s in DEFAULT_SYMBOLS if s.symbol != "XAUUSD"]


@dataclass(slots=True)
class Scenario:
    login: int = 5_001_234
    password: str | None = None  # None: any password logs in
    server: str = "FakeBroker-Demo"
    company: str = "Fake Broker Ltd"
    name: str = "Fake Trader"
    currency: str = "USD"
    balance: str = "10000"
    leverage: int = 100
    commission_per_lot: str = "0"
    stop_out_level: str = "50"
    margin_call_level: str = "100"
    #: symbols in Market Watch at start; every other known symbol exists but is not selected
    market_watch: list[str] = field(default_factory=lambda: list(_MARKET_WATCH))
    #: symbols the terminal knows (None: all of fxgate's default instruments)
    symbols: list[str] | None = None
    seed: int | None = 7
    tick_rate: float = 2.0
    #: False: no symbol has ticked yet when the terminal starts (a quiet market): ticks
    #: read as zeros and orders get 10021 until the first price
    priced: bool = True
    #: False: prices move only when a test sets them (``set_price``)
    random_ticks: bool = True
    #: "real": wall-clock time (plus ``advance``); "manual": starts at ``start_time`` and
    #: moves only by ``advance``
    clock: str = "real"
    start_time: float = 1_767_225_600.0  # 2026-01-01 00:00 UTC, for a manual clock
    market_hours: str = "24x7"
    #: per-symbol ``filling_mode`` bits (1 FOK, 2 IOC); default 3 (both)
    filling_modes: dict[str, int] = field(default_factory=dict)
    history_bars: int = 1000
    max_ticks: int = 200_000
    #: retcode of a placed pending order (10009 as forex servers answer; 10008 on some)
    pending_retcode: int = 10009
    first_ticket: int = 50_000_000
    autotrading: bool = True
    build: int = 4755
    #: extra EURUSD-like instruments ``EURUSD.s01``... (in Market Watch), for benchmarks
    #: that need more symbols than fxgate's defaults
    synthetic_symbols: int = 0
    #: symbols whose server reports exchange trades: each simulated tick with volume is
    #: followed by a trade tick (``TICK_FLAG_LAST``/``VOLUME``, the side in the flags) of
    #: ``volume`` smallest lots at the ask (the bid rose) or the bid; every other symbol
    #: has none, as spot FX CFDs have none (``trade`` adds one by hand to any symbol)
    trade_symbols: list[str] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Scenario:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"FAKE_MT5_SCENARIO: unknown keys {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_env(cls) -> Scenario:
        raw = os.environ.get("FAKE_MT5_SCENARIO", "").strip()
        if not raw:
            return cls()
        if not raw.startswith("{"):
            with open(raw, encoding="utf-8") as f:
                raw = f.read()
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("FAKE_MT5_SCENARIO must be a JSON object")
        return cls.from_mapping(data)
