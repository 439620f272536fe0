"""The ``mt5`` broker: a MetaTrader 5 terminal behind the broker port.

The only package of fxgate that imports ``MetaTrader5`` (or ``mt5linux``), and only in
:mod:`fxgate.brokers.mt5.terminal`, in the worker. Modules, one idea each:

- ``terminal``: the package as the worker calls it (records become dicts there), and
  the ``Worker`` port the adapter uses;
- ``process``: the worker as a child process (the default), ``worker`` its main, and
  ``wire`` the pipe's frames between them;
- ``thread``: the worker as a thread of the daemon (``mt5.worker = "thread"``, tests);
- ``jobs``: what runs in the worker, by name, one hop per step (connect, a poll, a
  look-up, the tick sweep and its filtering);
- ``convert``: those dicts become fxgate's domain records (nothing above sees MT5 types);
- ``requests``: fxgate orders become ``TradeRequest`` dicts, retcodes become errors;
- ``sync``: one poll of positions, orders, deals and account, diffed into changes;
- ``feed``: the ticks of the streamed symbols as a quote source;
- ``session``: the adapter's shared state, health, start/stop, the polling loops and
  reconnection (``Mt5Session``);
- ``reads``: the port's reads on it: symbols, quotes, book, candles, account, previews
  (``Mt5Reads``);
- ``broker``: the order path (place, modify, cancel, close, never sent twice) and the
  adapter's whole contract in its docstring (``Mt5Broker``, the port);
- ``factory``: the registry's ``build`` and ``check``.
"""
