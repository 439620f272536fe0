"""Admin endpoints: drive the paper market, and publish events from back-end services.

``POST /paper/quotes`` sets an exact paper price so that fills, stop losses, take
profits, stop-outs and alerts can be tested without waiting for the random walk; it
answers after everything the new price triggered is stored and announced.
``POST /publish`` is the server-side publish API (like Centrifugo's): a processing
service with an admin token, or a token with the ``publish`` scope, puts one event, or
a batch, into any channel, validated against the channel first (seed 000's
"processing services -> API gateway -> frontend"). In-process producers call
``node.ingest`` instead.
"""

from __future__ import annotations

from decimal import Decimal

from fxgate.domain.errors import AuthorizationError, FxgateError, ValidationError
from fxgate.domain.roles import Role, Scope
from fxgate.domain.timefmt import iso_ms
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.models import ResponseModel
from fxgate.web.rest.parsing import field_error, invalid
from fxgate.web.rest.trading_models import PublishBatch, PublishedOut, PublishEvent, QuoteIn


class QuoteOut(ResponseModel):
    symbol: str
    bid: float
    ask: float
    spread: int
    timestamp: str


class PaperQuotesHandler(ApiHandler):
    path = "/paper/quotes"
    tag = "admin"

    @op.post(
        summary="Set the paper market's price of a symbol (admin, paper broker only)",
        body=QuoteIn,
        response=QuoteOut,
        role=Role.ADMIN,
        errors=(403,),
        rate_limited=False,
    )
    async def set_quote(self, body: QuoteIn) -> QuoteOut:
        if self.node.settings.broker.backend != "paper":
            raise AuthorizationError("Prices can only be set on the paper broker")
        market = self.node.market
        symbol = body.symbol.upper()
        if symbol not in market.source.specs:
            raise invalid(
                "Unknown symbol", [field_error("symbol", f"No symbol {symbol}", "symbol")]
            )
        if body.bid >= body.ask:
            raise invalid(
                "Validation failed", [field_error("ask", "Must exceed bid", "value_error")]
            )
        try:
            quote = market.set_quote(symbol, float(Decimal(body.bid)), float(Decimal(body.ask)))
        except ValueError as exc:
            raise invalid("Invalid quote", [field_error("bid", str(exc), "value_error")]) from None
        await self.node.broker.flush()
        return QuoteOut(
            symbol=quote.symbol,
            bid=quote.bid,
            ask=quote.ask,
            spread=quote.spread_points,
            timestamp=iso_ms(quote.ts),
        )


class PublishHandler(ApiHandler):
    path = "/publish"
    tag = "admin"

    @op.post(
        summary="Publish one event, or a batch, into a channel (admin/service token)",
        body=PublishEvent | PublishBatch,
        response=PublishedOut,
        role=Role.ADMIN,
        scope=Scope.PUBLISH,
        rate_limited=False,
        description="An admin token, or a service token with the publish scope "
        "(`fxgate token issue --user SERVICE --role viewer --scope publish`). "
        "A per-user channel needs userId. The payload is validated against the "
        "channel (required fields); a batch is checked whole before anything is published.",
    )
    async def publish(self, body: PublishEvent | PublishBatch) -> PublishedOut:
        events = body.events if isinstance(body, PublishBatch) else [body]
        hub = self.node.hub
        errors = []
        prefix = "events." if isinstance(body, PublishBatch) else ""
        for i, ev in enumerate(events):
            ch = hub.channels.get(ev.channel)
            where = f"{prefix}{i}." if prefix else ""
            field = f"{where}data"
            try:
                if ch is None:
                    field = f"{where}channel"
                    raise ValidationError(
                        "Invalid channel", field=field, details={"channel": ev.channel}
                    )
                try:
                    ch.check_published(ev.data)
                except ValidationError as exc:
                    if exc.field.startswith("data."):  # the payload field it is about
                        field = f"{where}{exc.field}"
                    raise
                if ch.scope == "user" and not ev.user_id and ch.shared_stream is None:
                    field = f"{where}userId"
                    raise ValidationError("This channel is per-user: name the user", field=field)
            except FxgateError as exc:
                errors.append(
                    {
                        "field": field,
                        "index": i,
                        "channel": ev.channel,
                        "message": exc.message,
                        "type": "channel",
                        "details": exc.details,
                    }
                )
        if errors:
            raise ValidationError(
                "Validation failed", field=errors[0]["field"], reason="channel", errors=errors
            )
        for ev in events:
            # In order, each announced before the next: a kept event (a signal) is
            # stored first, and the answer comes once everything is out.
            await self.node.ingest(ev.channel, ev.data, user_id=ev.user_id)
        return PublishedOut(published=len(events))


HANDLERS: tuple[type[ApiHandler], ...] = (PaperQuotesHandler, PublishHandler)
