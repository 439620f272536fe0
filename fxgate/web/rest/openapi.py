"""``/openapi.json`` (OpenAPI 3.1) and ``/docs``, generated from the operations.

The schemas come from the very pydantic models the handlers validate with (validation
mode for what clients send, serialization mode for what they get back), so the
document says ``additionalProperties: false`` exactly where the handler refuses unknown
fields, and a body with two accepted shapes (the login) is a ``oneOf``.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from fxgate.domain.roles import Role
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.models import Pagination
from fxgate.web.rest.registry import Operation, Raw, union_members

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)}")


def _models_in(tp: Any) -> Iterable[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp
        return
    for arg in typing.get_args(tp):
        yield from _models_in(arg)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


class _Schemas:
    """Collects every model first, then emits them once under ``components``."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
        self.refs: dict[tuple[Any, JsonSchemaMode], Any] = {}
        self.defs: dict[str, Any] = {}

    def want(self, tp: Any, mode: JsonSchemaMode) -> None:
        for model in _models_in(tp):
            self.pairs[(model, mode)] = None

    def build(self) -> None:
        refs, top = models_json_schema(list(self.pairs), ref_template=REF)
        self.refs = dict(refs)
        self.defs = top.get("$defs", {})

    def of(self, tp: Any, mode: JsonSchemaMode) -> Any:
        if tp is None:
            return {"type": "null"}
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return self.refs[(tp, mode)]
        members = union_members(tp)
        if len(members) > 1:
            # Accepted shapes exclude each other (extra fields are refused): oneOf.
            return {"oneOf": [self.of(m, mode) for m in members]}
        if typing.get_origin(tp) in (list, Sequence, tuple):
            (item, *_) = typing.get_args(tp)
            return {"type": "array", "items": self.of(item, mode)}
        return TypeAdapter(tp).json_schema(mode=mode, ref_template=REF)


def _envelope(data: Any, paginated: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "success": {"const": True},
        "data": data,
        "message": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
    }
    required = ["success", "data", "timestamp"]
    if paginated:
        props["pagination"] = _ref("Pagination")
        required.append("pagination")
    return {"type": "object", "required": required, "properties": props}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("ErrorResponse")}},
    }


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["success", "error", "timestamp"],
    "properties": {
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "description": (
                        "For VALIDATION_ERROR an object naming the field: {field, reason?,"
                        " errors?: [{field, message, type}], ...context}."
                    )
                },
            },
        },
        "timestamp": {"type": "string", "format": "date-time"},
    },
}

_ERRORS = {
    401: "AUTHENTICATION_ERROR: missing, invalid, expired or revoked credentials",
    403: "AUTHORIZATION_ERROR: the token's role is not enough",
    404: "NOT_FOUND_ERROR",
    409: "CONFLICT_ERROR",
    422: "VALIDATION_ERROR: details.field names the field; details.errors lists each problem",
    429: "RATE_LIMIT_ERROR: see the Retry-After header",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the ``null`` branch of an optional field: a
    query string cannot send null, it leaves the parameter out."""
    branches = prop.get("anyOf")
    if not isinstance(branches, list):
        return prop
    rest = [b for b in branches if b != {"type": "null"}]
    if len(rest) == len(branches):
        return prop
    out = {k: v for k, v in prop.items() if k != "anyOf" and not (k == "default" and v is None)}
    if len(rest) == 1:
        return {**out, **rest[0]}
    return {**out, "anyOf": rest}


def _body_required(body: Any) -> bool:
    """An empty body reads as ``{}``: it is required only if some accepted shape has a
    required field."""
    return any(any(f.is_required() for f in m.model_fields.values()) for m in union_members(body))


def _parameters(path: str, query: type[BaseModel] | None) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(path)
    ]
    if query is not None:
        schema = query.model_json_schema(mode="validation", ref_template=REF)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            prop = _not_null({k: v for k, v in prop.items() if k != "title"})
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
            }
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    return params


def _operation(
    handler: type[ApiHandler], name: str, o: Operation, schemas: _Schemas
) -> dict[str, Any]:
    data = schemas.of(o.response, "serialization")
    if o.paginated:
        data = {"type": "array", "items": data}
    body = _envelope(data, o.paginated) if o.envelope else data
    responses: dict[str, Any] = {
        str(o.status): {
            "description": "Success",
            "content": {"application/json": {"schema": body}},
        }
    }
    codes = {500, *o.errors}
    if o.role is not None:
        codes |= {401, 429} if o.rate_limited else {401}
        if o.role != Role.VIEWER:
            codes.add(403)
    if o.body is not None or o.query is not None or _PARAM.search(handler.path):
        codes.add(422)
    for code in sorted(codes):
        if not o.envelope and code in o.errors:
            # A bare endpoint (health) answers its declared failure statuses in its
            # own shape, as seed 004's clients expect.
            responses[str(code)] = {**responses[str(o.status)], "description": "Failure"}
        else:
            responses[str(code)] = _error_response(_ERRORS.get(code, "Error"))
    out: dict[str, Any] = {
        "operationId": "".join(
            part.capitalize() if i else part for i, part in enumerate(name.split("_"))
        ),
        "summary": o.summary,
        "tags": [handler.tag] if handler.tag else [],
        "security": [{"bearerAuth": []}] if o.role is not None else [],
        "parameters": _parameters(handler.path, o.query),
        "responses": responses,
    }
    if o.description:
        out["description"] = o.description
    if o.role is not None:
        out["x-fxgate-role"] = str(o.role)
    if o.scope is not None:
        out["x-fxgate-scope"] = str(o.scope)
    if o.body is not None:
        out["requestBody"] = {
            "required": _body_required(o.body),
            "content": {"application/json": {"schema": schemas.of(o.body, "validation")}},
        }
    return out


def build_openapi(handlers: Sequence[type[ApiHandler]], *, version: str) -> dict[str, Any]:
    schemas = _Schemas()
    schemas.want(Pagination, "serialization")
    for handler in handlers:
        for o, _ in handler.operations.values():
            schemas.want(o.body, "validation")
            schemas.want(o.query, "validation")
            schemas.want(o.response, "serialization")
    schemas.build()
    paths: dict[str, Any] = {}
    for handler in handlers:
        item: dict[str, Any] = {}
        for method, (o, name) in handler.operations.items():
            if o.in_schema:
                item[method.lower()] = _operation(handler, name, o, schemas)
        if not item:
            continue
        if "" not in handler.prefixes:
            item["servers"] = [{"url": p} for p in handler.prefixes]
        paths[handler.path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fxgate REST API",
            "version": version,
            "description": (
                "Seed 003's REST API. Every path is served both at the root and under"
                " /api/v1. Responses use the envelope {success, data, message?,"
                " pagination?, timestamp}; errors {success: false, error: {code, message,"
                " details}, timestamp}."
            ),
        },
        "servers": [{"url": "/"}, {"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": {**schemas.defs, "ErrorResponse": _ERROR_SCHEMA},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


_DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fxgate REST API</title>
</head>
<body>
<redoc spec-url="{spec}"></redoc>
<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"></script>
</body>
</html>
"""


#: Request fields whose valid values the running node knows: the document lists them,
#: so a client (or a fuzzer) sees which symbols and channels exist.
_SYMBOL_FIELDS = ("symbol",)
_CHANNEL_FIELDS = ("channel",)
#: Paths whose query's symbol must be known (elsewhere it is a filter: any value).
_CHECKED_QUERIES = ("/market/data",)


def with_known_values(
    doc: dict[str, Any], *, symbols: Sequence[str], channels: Sequence[str]
) -> dict[str, Any]:
    """``doc`` with ``enum`` on request fields naming a symbol or a channel. Lowercase
    and ``EUR/USD`` spellings stay accepted; the document shows the canonical ones."""

    def mark(props: dict[str, Any]) -> None:
        for name, prop in props.items():
            if name in _SYMBOL_FIELDS and prop.get("type") == "string" and symbols:
                prop["enum"] = list(symbols)
            elif name in _CHANNEL_FIELDS and prop.get("type") == "string" and channels:
                prop["enum"] = list(channels)
            elif name == "symbols" and prop.get("type") == "array" and symbols:
                prop["items"] = {**prop.get("items", {}), "enum": list(symbols)}

    for schema in doc["components"]["schemas"].values():
        if schema.get("additionalProperties") is False:  # request models only
            mark(schema.get("properties", {}))
    for path, item in doc["paths"].items():
        if path not in _CHECKED_QUERIES:
            continue
        for o in item.values():
            if isinstance(o, dict):
                for param in o.get("parameters", ()):
                    if param["in"] == "query":
                        mark({param["name"]: param["schema"]})
    return doc


class OpenApiHandler(ApiHandler):
    path = "/openapi.json"

    @op.get(summary="This document", role=None, in_schema=False)
    async def openapi(self) -> Raw:
        if self.ctx.openapi is None:
            self.ctx.openapi = with_known_values(
                build_openapi(self.ctx.handlers, version=self.node.version),
                symbols=self.node.market.symbols,
                channels=sorted(self.node.hub.channels),
            )
        return Raw(self.ctx.openapi)


class DocsHandler(ApiHandler):
    path = "/docs"

    @op.get(summary="API reference (Redoc)", role=None, in_schema=False)
    async def docs(self) -> Raw:
        base = self.request.path.rstrip("/").removesuffix("/docs")
        return Raw(_DOCS_HTML.format(spec=f"{base}/openapi.json"), "text/html; charset=UTF-8")


HANDLERS: tuple[type[ApiHandler], ...] = (OpenApiHandler, DocsHandler)
