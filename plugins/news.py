"""``news``: market news, public, filterable by the symbols an item is about.

Seed 003's ``market_news`` (``id title content source impact symbols publishedAt``).
fxgate writes no news itself: a news service publishes items through the publish API
(``POST /api/v1/publish {"channel": "news", "data": {...}}``), and each item is checked
here, field by field, before it reaches anyone. An item names several symbols, so the
symbol filter is not a stream key: a subscriber asking for ``EURUSD`` gets the items
whose ``symbols`` include it (items about no symbol go to unfiltered subscribers only).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from fxgate.domain.errors import ValidationError
from fxgate.domain.timefmt import iso_ms, parse_iso
from fxgate.plugins.api import Channel, Filter, Filters, PluginAPI, hookimpl

IMPACTS = ("high", "medium", "low")
FIELDS = ("id", "title", "content", "source", "impact", "symbols", "publishedAt")
#: Longest text accepted per field: a news item is a headline and a summary, not a page.
MAX_TEXT = {"id": 128, "title": 500, "content": 20_000, "source": 200}


def _invalid(field: str, message: str, reason: str, **context: Any) -> ValidationError:
    return ValidationError(
        f"Invalid news item: {message}",
        field=f"data.{field}",
        reason=reason,
        details={"channel": "news", **context},
    )


def _text(data: Mapping[str, Any], field: str, *, required: bool = True) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _invalid(field, f"{field} is required", "missing")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _invalid(field, f"{field} must be a non-empty string", "not_a_string")
    if len(value) > MAX_TEXT[field]:
        raise _invalid(field, f"{field} is too long", "too_long", limit=MAX_TEXT[field])
    return value


def news_item(data: Any) -> dict[str, Any]:
    """A published item checked and completed (``id`` and ``publishedAt`` default to a
    new id and now; ``impact`` is lower case and symbols upper case, as everywhere)."""
    if not isinstance(data, Mapping):
        raise ValidationError(
            "Invalid news item: data must be an object",
            field="data",
            reason="not_object",
            details={"channel": "news"},
        )
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise _invalid(
            unknown[0], f"unknown field {unknown[0]!r}", "unknown_field", accepted=list(FIELDS)
        )
    impact = data.get("impact")
    if not isinstance(impact, str) or impact.lower() not in IMPACTS:
        raise _invalid(
            "impact", "impact must be high, medium or low", "not_allowed", accepted=list(IMPACTS)
        )
    symbols = data.get("symbols", [])
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
        raise _invalid("symbols", "symbols must be a list of symbol names", "not_a_list")
    published = data.get("publishedAt")
    if published is None:
        published_at = iso_ms()
    else:
        try:
            if not isinstance(published, str):
                raise ValueError(published)
            published_at = iso_ms(parse_iso(published).timestamp())
        except ValueError:
            raise _invalid(
                "publishedAt", "publishedAt must be an ISO 8601 time", "not_a_time"
            ) from None
    return {
        "id": _text(data, "id", required=False) or "news_" + uuid.uuid4().hex[:16],
        "title": _text(data, "title"),
        "content": _text(data, "content"),
        "source": _text(data, "source"),
        "impact": impact.lower(),
        "symbols": sorted({s.upper() for s in symbols}),
        "publishedAt": published_at,
    }


class NewsChannel(Channel):
    name = "news"
    message_type = "news"
    scope = "public"
    filters = {"symbol": Filter("symbols", "One symbol or a list: items about any of them")}
    description = "Market news from a news service (through the publish API)"
    required_fields = ("title", "content", "source", "impact")

    def check_published(self, data: Any) -> Mapping[str, Any]:
        return news_item(data)

    def matches(self, filters: Filters, payload: Mapping[str, Any]) -> bool:
        wanted = filters.get("symbol")
        if wanted is None:
            return True
        symbols = payload.get("symbols") or ()
        return any(str(s) in wanted for s in symbols)


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [NewsChannel(api)]
