"""Base models for what crosses the REST boundary, and the shared query shapes.

Every request body is a :class:`RequestModel`: camelCase on the wire (seed 003) and
unknown fields refused, so a typo such as ``stopLos`` is an error instead of a silently
ignored protection. Response models are lenient on the way in (the handlers build them
from snake_case values) and camelCase on the way out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel


class RequestModel(BaseModel):
    """A JSON body: camelCase names only, unknown fields refused, and types as JSON
    has them (strict: ``false`` is not a number, ``"1"`` is not an integer)."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        frozen=True,
    )


class QueryModel(BaseModel):
    """Query parameters. Unknown ones are ignored, unlike body fields: browsers and
    proxies add cache busters (``_=1712…``) that a client cannot always control."""

    model_config = ConfigDict(
        extra="ignore",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        frozen=True,
    )


class ResponseModel(BaseModel):
    """What a handler returns: built by name in Python, written in camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


#: The last page anyone can ask for: 500 items a page, five hundred million items.
MAX_PAGE = 1_000_000


class PageQuery(QueryModel):
    """Seed 003's paging parameters; an endpoint that pages takes this or a subclass."""

    #: Bounded so that ``offset`` always fits SQLite's (and BSON's) 64-bit integers.
    page: int = Field(1, ge=1, le=MAX_PAGE, description="1-based page number.")
    limit: int = Field(50, ge=1, le=500, description="Items per page (at most 500).")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


class Pagination(ResponseModel):
    page: int
    limit: int
    total: int
    total_pages: int


#: A Decimal that goes out as a JSON number: money and prices are computed exactly and
#: shown as numbers, which is what seed 003's clients parse.
JsonDecimal = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

#: A free-form JSON object (strategy parameters, user preferences).
JsonObject = dict[str, Any]
