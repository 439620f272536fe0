"""``/signals``: the stored trading signals (seed 002's shape) a user may see.

Public signals and the caller's own private ones, newest first, filtered by symbol,
side, status, source and time; any role may read. Signals come in through
``POST /publish`` (``channel: "signals"``) and ``node.ingest``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from fxgate.domain.errors import NotFoundError
from fxgate.domain.timefmt import parse_iso
from fxgate.services.ports.store.records import Doc
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.models import PageQuery, ResponseModel
from fxgate.web.rest.parsing import field_error, invalid


class SignalsQuery(PageQuery):
    symbol: str | None = Field(None, max_length=32)
    side: Literal["buy", "sell"] | None = None
    status: Literal["pending", "approved", "rejected"] | None = None
    source: str | None = Field(None, max_length=64)
    since: str | None = Field(
        None,
        max_length=64,
        description="ISO 8601; signals at or after.",
        json_schema_extra={"format": "date-time"},
    )
    until: str | None = Field(
        None,
        max_length=64,
        description="ISO 8601; signals before.",
        json_schema_extra={"format": "date-time"},
    )


class ValidatorOut(ResponseModel):
    name: str
    type: str
    approved: bool
    confidence: float
    reason: str
    timestamp: str


class SignalOut(ResponseModel):
    uuid: str
    symbol: str
    side: Literal["buy", "sell"]
    volume: float
    tp: float | None
    sl: float | None
    source: str
    confidence: float
    timestamp: str
    validators: list[ValidatorOut]
    status: Literal["pending", "approved", "rejected"]


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise invalid(
            "Invalid query parameters", [field_error(field, "Not an ISO 8601 time", "datetime")]
        ) from None


def signal_out(doc: Doc) -> SignalOut:
    return SignalOut.model_validate(doc)


class SignalsHandler(ApiHandler):
    path = "/signals"
    tag = "signals"

    @op.get(
        summary="Trading signals you may see (public and your own), newest first",
        query=SignalsQuery,
        response=SignalOut,
        paginated=True,
    )
    async def list_signals(self, query: SignalsQuery) -> op.Page[SignalOut]:
        items, total = await self.node.signals.page(
            self.user_id,
            symbol=query.symbol.upper() if query.symbol else None,
            side=query.side,
            status=query.status,
            source=query.source,
            start=_time(query.since, "since"),
            end=_time(query.until, "until"),
            offset=query.offset,
            limit=query.limit,
        )
        return op.Page([signal_out(d) for d in items], total=total)


class SignalHandler(ApiHandler):
    path = "/signals/{uuid}"
    tag = "signals"

    @op.get(summary="One signal, by uuid", response=SignalOut, errors=(404,))
    async def show_signal(self, uuid: str) -> SignalOut:
        doc = await self.node.signals.get(self.user_id, uuid)
        if doc is None:
            raise NotFoundError("Signal not found", details={"uuid": uuid})
        return signal_out(doc)


HANDLERS: tuple[type[ApiHandler], ...] = (SignalsHandler, SignalHandler)
