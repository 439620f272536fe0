"""Tokens that must stop working although their signature is good (issue 6).

- a user disabled with ``fxgate users disable`` (another process) is refused on REST
  and on new sockets, and their open sockets close with 4001, within
  ``auth.user_refresh`` seconds;
- refresh-token reuse revokes the access tokens of the family, not only its refresh
  tokens;
- claims fxgate would never issue (a string ``exp``, a century-long lifetime, no
  ``role``, ...) are refused: 401 over REST, and 401 / 4001 over the socket.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
import websockets

from tests.conftest import Daemon, Daemons
from tests.trading_helpers import HTTP, PASSWORD, Trader, bearer, unique
from tests.wsclient import Client

MARKET = {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.1}
REFRESH = 0.3


@pytest.fixture(scope="module")
def auth_daemon(module_daemons: Daemons) -> Daemon:
    return module_daemons(
        FXGATE_AUTH_USER_REFRESH=str(REFRESH), FXGATE_SERVER_RATE_LIMIT_PER_MINUTE="100000"
    )


def until_status(fn: Any, status: int, timeout: float = 5) -> httpx.Response:
    """Repeat a request until it answers ``status`` (the daemon's periodic read)."""
    deadline = time.monotonic() + timeout
    while True:
        r: httpx.Response = fn()
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


async def refused_on_socket(d: Daemon, token: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await Client.connect(d.ws_url() + f"?token={token}")
    assert info.value.response.status_code == 401
    async with await Client.connect(d.ws_url()) as c:
        await c.send({"type": "auth", "token": token})
        err = await c.recv()
        assert (err["type"], err["code"]) == ("error", "AUTHENTICATION_ERROR")


# -- disabled users ------------------------------------------------------------------------


async def test_a_disabled_user_is_refused_everywhere_and_their_sockets_close_4001(
    auth_daemon: Daemon,
) -> None:
    trader = Trader.logged_in(auth_daemon)
    assert trader.post("/trading/orders", MARKET).status_code == 201
    async with await Client.connect(auth_daemon.ws_url() + f"?token={trader.token}") as c:
        assert (await c.recv())["type"] == "connection"
        out = auth_daemon.cli("users", "disable", trader.user_id)
        assert out.returncode == 0, out.stderr
        assert await c.closed_with(timeout=REFRESH + 5) == 4001
    r = until_status(lambda: trader.post("/trading/orders", MARKET), 401)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "AUTHENTICATION_ERROR"
    assert trader.get("/auth/me").status_code == 401
    assert trader.get("/trading/positions").status_code == 401
    await refused_on_socket(auth_daemon, trader.token)


async def test_a_token_for_a_user_that_does_not_exist_is_refused(auth_daemon: Daemon) -> None:
    claims = jwt.decode(auth_daemon.token(unique("real")), options={"verify_signature": False})
    claims["sub"] = unique("ghost")  # never created in the store
    ghost = auth_daemon.sign(claims)
    r = HTTP.get(auth_daemon.url("/auth/me"), headers=bearer(ghost))
    assert r.status_code == 401, r.text
    r = HTTP.get(auth_daemon.url("/trading/positions"), headers=bearer(ghost))
    assert r.status_code == 401, r.text
    await refused_on_socket(auth_daemon, ghost)


# -- refresh-token reuse ---------------------------------------------------------------


async def test_refresh_reuse_revokes_the_familys_access_tokens(auth_daemon: Daemon) -> None:
    trader = Trader.logged_in(auth_daemon)
    first_access = trader.token
    # Log in again to get the refresh token of this session (logged_in keeps the access
    # token only): a second login is a second family, independent of the first.
    login = HTTP.post(
        auth_daemon.url("/auth/login"),
        json={"email": trader.get("/auth/me").json()["data"]["email"], "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    access, refresh = login.json()["data"]["accessToken"], login.json()["data"]["refreshToken"]
    rotated = HTTP.post(auth_daemon.url("/auth/refresh"), json={"refreshToken": refresh})
    assert rotated.status_code == 200, rotated.text
    new_access = rotated.json()["data"]["accessToken"]
    for token in (access, new_access):
        assert HTTP.get(auth_daemon.url("/auth/me"), headers=bearer(token)).status_code == 200
    # The spent token again: reuse. The family's access tokens stop at once.
    reuse = HTTP.post(auth_daemon.url("/auth/refresh"), json={"refreshToken": refresh})
    assert reuse.status_code == 401, reuse.text
    for token in (access, new_access):
        r = HTTP.get(auth_daemon.url("/auth/me"), headers=bearer(token))
        assert r.status_code == 401, r.text
        r = HTTP.post(auth_daemon.url("/trading/orders"), headers=bearer(token), json=MARKET)
        assert r.status_code == 401, r.text
        await refused_on_socket(auth_daemon, token)
    # The other login's session is untouched.
    assert HTTP.get(auth_daemon.url("/auth/me"), headers=bearer(first_access)).status_code == 200


# -- malformed claims ------------------------------------------------------------------


def _claims(d: Daemon) -> dict[str, Any]:
    good = d.token(unique("c"))
    return dict(jwt.decode(good, options={"verify_signature": False}))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c.update(exp=str(c["exp"])), id="exp-string"),
        pytest.param(lambda c: c.update(exp=float(c["exp"]) + 0.5), id="exp-float"),
        pytest.param(lambda c: c.update(exp=int(time.time()) + 10 * 366 * 86400), id="exp-decade"),
        pytest.param(lambda c: c.update(exp=2**62), id="exp-huge"),
        pytest.param(lambda c: c.update(iat=str(c["iat"])), id="iat-string"),
        pytest.param(lambda c: c.update(iat=int(time.time()) + 3600), id="iat-future"),
        pytest.param(lambda c: c.pop("role"), id="no-role"),
        pytest.param(lambda c: c.update(role=7), id="role-number"),
        pytest.param(lambda c: c.update(sub=12345), id="sub-number"),
        pytest.param(lambda c: c.update(sub=""), id="sub-empty"),
        pytest.param(lambda c: c.update(jti=["x"]), id="jti-list"),
        pytest.param(lambda c: c.update(tier={"x": 1}), id="tier-object"),
    ],
)
async def test_well_signed_tokens_with_malformed_claims_are_refused(
    auth_daemon: Daemon, change: Any
) -> None:
    claims = _claims(auth_daemon)
    assert (
        HTTP.get(auth_daemon.url("/auth/me"), headers=bearer(auth_daemon.sign(claims))).status_code
        == 200
    )
    change(claims)
    token = auth_daemon.sign(claims)
    r = HTTP.get(auth_daemon.url("/auth/me"), headers=bearer(token))
    assert r.status_code == 401, r.text
    r = HTTP.post(auth_daemon.url("/trading/orders"), headers=bearer(token), json=MARKET)
    assert r.status_code == 401, r.text
    await refused_on_socket(auth_daemon, token)
