"""Seed 000's dashboard dialect (``/ws/dashboard``): no I/O, tested in memory.

``wire`` parses client frames and encodes replies; ``messages`` builds the five message
types from canonical payloads; ``clock`` and ``volatility`` are the market labels;
``budget`` is the per-user send cap; ``feed`` keeps each user's dashboard state and
paces what goes out; ``market`` batches quotes once per tier for every feed; ``session``
is one connection.
"""
