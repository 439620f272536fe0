"""The trading records' store documents: JSON-safe, exact, and readable across versions."""

from __future__ import annotations

import json
from decimal import Decimal

from fxgate.domain.trading import Order, OrderReason, OrderStatus, Position
from fxgate.store.codecs import decode, encode
from tests.store.builders import order, position


def test_a_document_is_json_with_decimals_as_strings_and_enums_as_values() -> None:
    doc = encode(order("o1", client_order_id="c1", ticket=7))
    assert json.loads(json.dumps(doc)) == doc
    assert doc["volume"] == "0.10"
    assert doc["status"] == "pending"
    assert doc["average_price"] is None
    assert decode(Order, doc) == order("o1", client_order_id="c1", ticket=7)


def test_a_document_from_an_older_fxgate_still_loads() -> None:
    doc = encode(position(5))
    del doc["realized_pnl"]  # a field added later: its default applies
    doc["retired_field"] = "x"  # a field dropped later: ignored
    loaded = decode(Position, doc)
    assert loaded.realized_pnl == Decimal(0)
    assert loaded.ticket == 5


def test_decoded_values_have_their_domain_types() -> None:
    loaded = decode(Order, {**encode(order("o1")), "status": "filled", "reason": "sl"})
    assert loaded.status is OrderStatus.FILLED
    assert loaded.reason is OrderReason.STOP_LOSS
    assert isinstance(loaded.price, Decimal)
