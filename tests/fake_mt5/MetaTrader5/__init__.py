"""A fake ``MetaTrader5`` package for tests and dry runs: put ``tests/fake_mt5`` first on
``PYTHONPATH`` and ``import MetaTrader5`` gets this instead of MetaQuotes' Windows-only
binary. See ``tests/fake_mt5/README.md`` for what it reproduces and what it does not.

The constants (``_constants``, with where each group's values come from), the record
types (``_records``, with their field sources) and the functions (``_api``) are the real
package's names; ``_control`` drives the fake from a test (prices, time, orders placed
"by hand", faults), and ``FAKE_MT5_CONTROL=host:port`` serves the same control over HTTP
for a daemon subprocess.
"""

from . import _constants
from ._api import (
    account_info,
    copy_rates_from,
    copy_rates_from_pos,
    copy_rates_range,
    copy_ticks_from,
    copy_ticks_range,
    history_deals_get,
    history_deals_total,
    history_orders_get,
    history_orders_total,
    initialize,
    last_error,
    login,
    market_book_add,
    market_book_get,
    market_book_release,
    order_calc_margin,
    order_calc_profit,
    order_check,
    order_send,
    orders_get,
    orders_total,
    positions_get,
    positions_total,
    shutdown,
    symbol_info,
    symbol_info_tick,
    symbol_select,
    symbols_get,
    symbols_total,
    terminal_info,
    version,
)
from ._constants import *  # noqa: F403
from ._records import (
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
)

__version__ = "5.0.5120"
__author__ = "fxgate tests (a fake of MetaQuotes Ltd.'s package)"

__all__ = [
    "AccountInfo",
    "BookInfo",
    "OrderCheckResult",
    "OrderSendResult",
    "SymbolInfo",
    "TerminalInfo",
    "Tick",
    "TradeDeal",
    "TradeOrder",
    "TradePosition",
    "TradeRequest",
    "account_info",
    "copy_rates_from",
    "copy_rates_from_pos",
    "copy_rates_range",
    "copy_ticks_from",
    "copy_ticks_range",
    "history_deals_get",
    "history_deals_total",
    "history_orders_get",
    "history_orders_total",
    "initialize",
    "last_error",
    "login",
    "market_book_add",
    "market_book_get",
    "market_book_release",
    "order_calc_margin",
    "order_calc_profit",
    "order_check",
    "order_send",
    "orders_get",
    "orders_total",
    "positions_get",
    "positions_total",
    "shutdown",
    "symbol_info",
    "symbol_info_tick",
    "symbol_select",
    "symbols_get",
    "symbols_total",
    "terminal_info",
    "version",
]

__all__ += [n for n in dir(_constants) if n.isupper() and not n.startswith("_")]

from . import _server  # noqa: E402  (starts the HTTP control only if FAKE_MT5_CONTROL is set)

_server.start_from_env()
