"""Operations: what each REST endpoint accepts, returns and requires, declared once.

A handler method decorated with ``@op.post(...)`` names its request model, query model,
response type, role and status. :class:`~fxgate.web.rest.base.ApiHandler` validates
with exactly these declarations and :mod:`fxgate.web.rest.openapi` documents from
them, so ``/openapi.json`` cannot drift from what the handlers accept.

Handler methods return the ``data`` of the envelope (a response model, a list of
them), or wrap it: :class:`Reply` to add a message or change the status, :class:`Page`
for a paginated list, :class:`Raw` to bypass the envelope (``/openapi.json``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter

from fxgate.domain.roles import Role, Scope
from fxgate.web.rest.models import PageQuery

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

OP_ATTR = "__fxgate_operation__"


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """``data`` with an optional seed-003 ``message`` and a status other than the default."""

    data: T
    message: str | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; the handler adds ``pagination`` from the query's page/limit."""

    items: Sequence[T]
    total: int


@dataclass(frozen=True, slots=True)
class Raw:
    """A body written as is, without the envelope (documents, HTML)."""

    body: Any
    content_type: str = "application/json; charset=UTF-8"
    status: int = 200


def union_members(tp: Any) -> tuple[Any, ...]:
    """``A | B`` -> ``(A, B)``; anything else -> ``(tp,)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


@dataclass(frozen=True)
class Operation:
    """One (method, path) of the API. Built by the decorators below, read by the handler
    base class (to validate and reply) and by the OpenAPI generator (to document)."""

    method: Method
    summary: str
    body: Any = None
    query: type[BaseModel] | None = None
    response: Any = None
    role: Role | None = Role.VIEWER
    scope: Scope | None = None
    status: int = 200
    paginated: bool = False
    envelope: bool = True
    in_schema: bool = True
    description: str = ""
    errors: tuple[int, ...] = ()
    rate_limited: bool = True
    _adapter: TypeAdapter[Any] | None = field(default=None, repr=False, compare=False)

    @property
    def body_models(self) -> tuple[type[BaseModel], ...]:
        """The accepted body shapes; several for a union (chosen by their fields)."""
        return tuple(union_members(self.body)) if self.body is not None else ()

    @property
    def public(self) -> bool:
        return self.role is None

    def dump(self, value: Any) -> Any:
        """``value`` as JSON-ready data, through the declared response type (aliases,
        Decimals as numbers); undeclared responses pass through unchanged."""
        if self._adapter is None:
            return value
        return self._adapter.dump_python(value, mode="json", by_alias=True)


def operation(
    method: Method,
    *,
    summary: str,
    body: Any = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    role: Role | None = Role.VIEWER,
    scope: Scope | None = None,
    status: int = 200,
    paginated: bool = False,
    envelope: bool = True,
    in_schema: bool = True,
    description: str = "",
    errors: tuple[int, ...] = (),
    rate_limited: bool = True,
) -> Callable[[F], F]:
    """Declare a handler method as the ``method`` operation of its handler's path.

    ``role=None`` makes the operation public; otherwise a bearer token of at least that
    role is required, or a token carrying ``scope`` whatever its role. ``paginated``
    needs a :class:`PageQuery` query model, and the method then returns a
    :class:`Page`. ``errors`` adds statuses to the documentation beyond those implied
    (401/403 with a role, 422 with a body or query, 429, 500).
    ``rate_limited=False`` exempts an authenticated operation from the per-user limit,
    for machine endpoints whose volume is the point (a backend publishing events).
    """
    for model in union_members(body) if body is not None else ():
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"body must be pydantic models, got {model!r}")
    if paginated and not (query is not None and issubclass(query, PageQuery)):
        raise TypeError("a paginated operation needs a PageQuery query model")
    adapter = TypeAdapter(list[response] if paginated else response) if response else None
    op = Operation(
        method=method,
        summary=summary,
        body=body,
        query=query,
        response=response,
        role=role,
        scope=scope,
        status=status,
        paginated=paginated,
        envelope=envelope,
        in_schema=in_schema,
        description=description,
        errors=errors,
        rate_limited=rate_limited,
        _adapter=adapter,
    )

    def mark(fn: F) -> F:
        setattr(fn, OP_ATTR, op)
        return fn

    return mark


def get(**kw: Any) -> Callable[[F], F]:
    return operation("GET", **kw)


def post(**kw: Any) -> Callable[[F], F]:
    return operation("POST", **kw)


def put(**kw: Any) -> Callable[[F], F]:
    return operation("PUT", **kw)


def patch(**kw: Any) -> Callable[[F], F]:
    return operation("PATCH", **kw)


def delete(**kw: Any) -> Callable[[F], F]:
    return operation("DELETE", **kw)
