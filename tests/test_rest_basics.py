"""The REST framework as a client meets it: envelope, both mounts, errors, limits, CORS,
the OpenAPI document, and strategies kept per user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Daemon, Daemons
from tests.trading_helpers import check_names_its_field, fields

RISK = {"maxRiskPerTrade": 1.5, "maxDailyLoss": 200, "stopLoss": 30, "takeProfit": 60}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["timestamp"].endswith("Z")
    err: dict[str, Any] = body["error"]
    if code == "VALIDATION_ERROR":
        check_names_its_field(err)
    return err


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
def test_both_mounts_answer_with_the_envelope(daemon: Daemon, user: str, prefix: str) -> None:
    r = httpx.get(daemon.url(f"{prefix}/auth/me"), headers=bearer(daemon.token(user)))
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    assert body["data"]["id"] == user
    assert body["timestamp"].endswith("Z")
    assert r.headers["Cache-Control"] == "no-store"


def test_missing_bad_and_expired_tokens_are_401(daemon: Daemon, user: str) -> None:
    url = daemon.url("/strategies")
    err = error(httpx.get(url), 401, "AUTHENTICATION_ERROR")
    assert "Bearer" in err["message"]
    error(httpx.get(url, headers=bearer("garbage")), 401, "AUTHENTICATION_ERROR")
    expired = daemon.token(user, ttl=-5)
    r = httpx.get(url, headers=bearer(expired))
    assert "expired" in error(r, 401, "AUTHENTICATION_ERROR")["message"]
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert expired not in r.text


def test_a_viewer_may_list_but_not_create_strategies(daemon: Daemon, user: str) -> None:
    viewer = bearer(daemon.token(user, role="viewer"))
    assert httpx.get(daemon.url("/strategies"), headers=viewer).status_code == 200
    body = {"name": "x", "type": "manual", "symbols": ["EURUSD"], "riskManagement": RISK}
    r = httpx.post(daemon.url("/strategies"), headers=viewer, json=body)
    assert error(r, 403, "AUTHORIZATION_ERROR")["details"] == {"required": "trader"}


def test_strategies_are_created_listed_paged_and_private(daemon: Daemon, user: str) -> None:
    alice = bearer(daemon.token(user))
    created = []
    for i in range(3):
        r = httpx.post(
            daemon.url("/api/v1/strategies"),
            headers=alice,
            json={
                "name": f"breakout {i}",
                "description": "London open",
                "type": "automated",
                "symbols": ["EURUSD", "eur/usd", "XAUUSD"],
                "riskManagement": RISK,
                "parameters": {"period": 20, "factor": 1.5},
            },
        )
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        assert data["status"] == "inactive"
        assert data["name"] == f"breakout {i}"
        assert data["createdAt"].endswith("Z")
        created.append(data["id"])

    r = httpx.get(daemon.url("/strategies?page=2&limit=2"), headers=alice)
    body = r.json()
    assert body["pagination"] == {"page": 2, "limit": 2, "total": 3, "totalPages": 2}
    assert [s["id"] for s in body["data"]] == created[2:]

    one = httpx.get(daemon.url(f"/strategies/{created[0]}"), headers=alice).json()["data"]
    assert one["symbols"] == ["EURUSD", "XAUUSD"]  # canonical names, once each
    assert one["riskManagement"] == RISK
    assert one["parameters"] == {"period": 20, "factor": 1.5}
    assert one["performance"] == {"totalTrades": 0, "winRate": 0, "totalPnL": 0, "sharpeRatio": 0}
    assert one["type"] == "automated"

    bob = bearer(daemon.token(user + "_bob"))
    assert httpx.get(daemon.url("/strategies"), headers=bob).json()["data"] == []
    r = httpx.get(daemon.url(f"/strategies/{created[0]}"), headers=bob)
    error(r, 404, "NOT_FOUND_ERROR")


def test_invalid_bodies_get_422_with_every_problem(daemon: Daemon, user: str) -> None:
    token = bearer(daemon.token(user))
    url = daemon.url("/strategies")
    r = httpx.post(
        url,
        headers=token,
        json={
            "name": 5,
            "type": "sometimes",
            "symbols": ["EURUSD", "NOPE"],
            "riskManagement": {"maxRiskPerTrade": -1, "stopLoss": 1, "takeProfit": 1},
            "stopLos": 10,
        },
    )
    err = error(r, 422, "VALIDATION_ERROR")
    assert fields(err) == {
        "name": "string_type",
        "type": "literal_error",
        "riskManagement.maxRiskPerTrade": "greater_than_equal",
        "riskManagement.maxDailyLoss": "missing",
        "stopLos": "extra_forbidden",
    }
    # Symbols are checked once the shape is right, with the same detail format.
    body = {"name": "x", "type": "manual", "symbols": ["EURUSD", "NOPE"], "riskManagement": RISK}
    err = error(httpx.post(url, headers=token, json=body), 422, "VALIDATION_ERROR")
    assert fields(err) == {"symbols.1": "symbol"}
    # snake_case names are not the API's: refused, not silently accepted.
    body = {**body, "symbols": ["EURUSD"], "risk_management": RISK}
    del body["riskManagement"]
    err = error(httpx.post(url, headers=token, json=body), 422, "VALIDATION_ERROR")
    assert fields(err) == {"riskManagement": "missing", "risk_management": "extra_forbidden"}
    assert httpx.get(url, headers=token).json()["data"] == []  # nothing was written


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b'{"email": "a@b.c",', "json_invalid"), (b"[1, 2]", "model_type"), (b"NaN", "json_invalid")],
)
def test_malformed_json_is_422(daemon: Daemon, content: bytes, problem: str) -> None:
    r = httpx.post(daemon.url("/auth/login"), content=content)
    assert fields(error(r, 422, "VALIDATION_ERROR")) == {"body": problem}


@pytest.mark.parametrize(("query", "field"), [("page=0", "page"), ("limit=501", "limit")])
def test_paging_limits(daemon: Daemon, user: str, query: str, field: str) -> None:
    r = httpx.get(daemon.url(f"/strategies?{query}"), headers=bearer(daemon.token(user)))
    assert set(fields(error(r, 422, "VALIDATION_ERROR"))) == {field}


def test_method_not_allowed_names_the_allowed_ones(daemon: Daemon, user: str) -> None:
    r = httpx.delete(daemon.url("/auth/me"), headers=bearer(daemon.token(user)))
    assert r.status_code == 405
    assert r.json()["success"] is False
    assert r.headers["Allow"] == "GET, OPTIONS"


def test_rate_limit_per_user_answers_429_with_retry_after(daemon: Daemon, user: str) -> None:
    token = bearer(daemon.token(user))
    with httpx.Client(base_url=daemon.url("")) as c:
        statuses = [c.get("/auth/me", headers=token).status_code for _ in range(100)]
        assert statuses == [200] * 100
        r = c.get("/api/v1/strategies", headers=token)
        err = error(r, 429, "RATE_LIMIT_ERROR")
        assert err["details"]["limit"] == 100
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        # Another user is not affected.
        assert c.get("/auth/me", headers=bearer(daemon.token(user + "_2"))).status_code == 200


def test_cors_preflight_refuses_a_foreign_origin(daemon: Daemon) -> None:
    r = httpx.options(
        daemon.url("/auth/login"),
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    error(r, 403, "AUTHORIZATION_ERROR")
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_for_configured_origins(make_daemon: Daemons, user: str) -> None:
    origin = "https://dash.example"
    d = make_daemon(FXGATE_SERVER_CORS_ORIGINS=f'["{origin}"]')
    r = httpx.options(
        d.url("/api/v1/strategies"),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    # The actual request (and its errors) carry the header too, so the page can read them.
    r = httpx.get(d.url("/strategies"), headers={"Origin": origin})
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "Retry-After" in r.headers["Access-Control-Expose-Headers"]


def test_api_v1_health_has_seed_004_shape(daemon: Daemon) -> None:
    body = httpx.get(daemon.url("/api/v1/health")).json()
    assert body["status"] == "healthy"
    assert body["timestamp"].endswith("Z")
    assert body["version"]
    assert body["components"]["database"] == "healthy"
    # The operator's /health keeps its own shape.
    assert "ready" in httpx.get(daemon.url("/health")).json()


# -- the OpenAPI document matches the handlers ---------------------------------------------


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    out = []
    for path, item in doc["paths"].items():
        prefixes = [s["url"].rstrip("/") for s in item.get("servers", doc["servers"])]
        for method, operation in item.items():
            if method != "servers":
                out.append((path, method, operation, prefixes))
    return out


def test_openapi_documents_every_route(daemon: Daemon) -> None:
    from fxgate.web.rest.routes import HANDLER_GROUPS

    doc = httpx.get(daemon.url("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    registered = {
        (h.path, m.lower())
        for group in HANDLER_GROUPS
        for h in group
        for m, (o, _) in h.operations.items()
        if o.in_schema
    }
    assert {(p, m) for p, m, _, _ in _operations(doc)} == registered
    assert {"/auth/login", "/auth/refresh", "/market/data", "/strategies"} <= set(doc["paths"])
    # Every documented operation is served at each of its mounts.
    for path, method, operation, prefixes in _operations(doc):
        for prefix in prefixes:
            r = httpx.request(method, daemon.url(prefix + path.replace("{", "").replace("}", "")))
            expected = {401} if operation["security"] else {200, 422}
            assert r.status_code in expected, (method, prefix + path, r.text)
    html = httpx.get(daemon.url("/api/v1/docs"))
    assert html.headers["Content-Type"].startswith("text/html")
    assert 'spec-url="/api/v1/openapi.json"' in html.text


def test_openapi_request_schemas_are_what_the_handlers_enforce(daemon: Daemon, user: str) -> None:
    doc = httpx.get(daemon.url("/openapi.json")).json()
    admin = bearer(daemon.token(user, role="admin"))
    login = doc["paths"]["/auth/login"]["post"]["requestBody"]["content"]["application/json"]
    assert len(login["schema"]["oneOf"]) == 2  # email+password, or a signed API key
    checked = 0
    for path, method, operation, prefixes in _operations(doc):
        if "requestBody" not in operation:
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        members = [_resolve(doc, s) for s in schema.get("oneOf", [schema])]
        for member in members:
            assert member["additionalProperties"] is False, path
        url = daemon.url(prefixes[-1] + path.replace("{", "").replace("}", ""))
        r = httpx.request(method, url, headers=admin, json={"zzUnknown": 1})
        assert fields(error(r, 422, "VALIDATION_ERROR")).get("zzUnknown") == "extra_forbidden"
        required = set(members[0].get("required", ()))
        if required:  # an empty body lists exactly the schema's required fields
            r = httpx.request(method, url, headers=admin, json={})
            assert set(fields(error(r, 422, "VALIDATION_ERROR"))) == required, path
        checked += 1
    assert checked >= 5


async def test_a_bug_is_a_500_that_leaks_nothing(tmp_path: Path) -> None:
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from tornado.web import Application

    from fxgate.app.assembly import build_node
    from fxgate.config.settings import Settings
    from fxgate.services.ports.store.errors import StoreError
    from fxgate.web.rest import registry as op
    from fxgate.web.rest.base import ApiHandler
    from fxgate.web.rest.context import RestContext

    class Broken(ApiHandler):
        path = "/broken"

        @op.get(summary="fails", role=None)
        async def fail(self) -> None:
            raise RuntimeError("password=hunter2 at /srv/secret.py")

        @op.post(summary="fails in the store", role=None)
        async def fail_store(self) -> None:
            raise StoreError("disk I/O error in /var/lib/fxgate/hunter2.sqlite")

    ctx = RestContext.build(build_node(Settings(state_dir=tmp_path)))
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(Application([("/broken", Broken, {"ctx": ctx})]))
    server.add_sockets(sockets)
    try:
        url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/broken"
        async with httpx.AsyncClient() as http:
            for r in [await http.get(url), await http.post(url)]:
                assert error(r, 500, "INTERNAL_SERVER_ERROR") == {
                    "code": "INTERNAL_SERVER_ERROR",
                    "message": "Internal server error",
                    "details": None,
                }
                assert "hunter2" not in r.text
    finally:
        server.stop()


def test_openapi_document_is_valid_openapi_3_1(daemon: Daemon) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(httpx.get(daemon.url("/api/v1/openapi.json")).json())
