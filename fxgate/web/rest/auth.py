"""``/auth/login``, ``/auth/refresh``, ``/auth/me``, ``/auth/logout`` (seeds 003 and 004).

The rules live in :mod:`fxgate.services.auth.sessions`; this module maps them onto
seed 003's shapes and adds what only HTTP knows: the client's address, for the
per-(email, IP) login throttle and the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field

from fxgate.domain.errors import RateLimitError
from fxgate.domain.roles import Role
from fxgate.domain.timefmt import iso_ms
from fxgate.services.auth.sessions import Session
from fxgate.services.ports.store.records import User, email_key
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.models import JsonObject, RequestModel, ResponseModel

#: What a user who never chose gets, in seed 003's ``User.preferences`` shape.
DEFAULT_PREFERENCES: Mapping[str, Any] = {
    "language": "en",
    "timezone": "UTC",
    "theme": "dark",
    "notifications": True,
}


class PasswordLogin(RequestModel):
    """Seed 003: a person logs in with email and password."""

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    remember_me: bool | None = Field(
        None, description="false: the session ends after a day instead of 7 days."
    )


class ApiKeyLogin(RequestModel):
    """Seed 004: a program logs in with an API key and an HMAC-SHA256 signature of
    ``f"{timestamp}\\n{api_key}\\nPOST\\n/auth/login"`` (see docs/rest.md)."""

    model_config = ConfigDict(alias_generator=None)

    api_key: str = Field(min_length=1, max_length=100)
    signature: str = Field(min_length=1, max_length=256, description="Lowercase hex.")
    timestamp: int = Field(description="Epoch milliseconds (JavaScript's Date.now()).")


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(RequestModel):
    refresh_token: str | None = Field(
        None, max_length=512, description="Its whole family is revoked too."
    )


class UserOut(ResponseModel):
    id: str
    email: str
    name: str
    role: Role
    preferences: JsonObject
    created_at: str
    updated_at: str


class TokensOut(ResponseModel):
    access_token: str
    refresh_token: str
    expires_in: int = Field(description="Seconds until the access token expires.")


class LoginOut(ResponseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    expires_in: int = Field(description="Seconds until the access token expires.")


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        preferences={**DEFAULT_PREFERENCES, **user.preferences},
        created_at=iso_ms(user.created_at.timestamp()),
        updated_at=iso_ms(user.updated_at.timestamp()),
    )


def login_out(session: Session) -> LoginOut:
    return LoginOut(
        user=user_out(session.user),
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_in=session.expires_in,
    )


class LoginHandler(ApiHandler):
    path = "/auth/login"
    tag = "auth"

    @op.post(
        summary="Log in with email and password, or with a signed API key",
        body=PasswordLogin | ApiKeyLogin,
        response=LoginOut,
        role=None,
        errors=(401, 429),
        description=(
            "The body's fields choose the shape. Wrong email and wrong password get the"
            " same 401; attempts are limited per email (or key) and client address."
        ),
    )
    async def login(self, body: PasswordLogin | ApiKeyLogin) -> LoginOut:
        sessions = self.ctx.sessions
        if isinstance(body, ApiKeyLogin):
            self._throttle(f"key:{body.api_key}")
            session = await sessions.login_with_api_key(
                body.api_key, body.signature, body.timestamp, ip=self.client_ip
            )
        else:
            self._throttle(f"email:{email_key(body.email)}")
            session = await sessions.login(
                body.email, body.password, remember_me=body.remember_me, ip=self.client_ip
            )
        return login_out(session)

    def _throttle(self, who: str) -> None:
        retry = self.ctx.login_limiter.hit(f"{who}|{self.client_ip}")
        if retry is not None:
            raise RateLimitError(
                "Too many login attempts; try again later",
                details={"retryAfter": retry},
            )


class RefreshHandler(ApiHandler):
    path = "/auth/refresh"
    tag = "auth"

    @op.post(
        summary="Trade a refresh token for a new access and refresh token",
        body=RefreshRequest,
        response=TokensOut,
        role=None,
        errors=(401,),
        description=(
            "Each refresh token works once. Presenting a spent one again revokes every"
            " token of its session (401), because one of the two holders is a thief."
        ),
    )
    async def refresh(self, body: RefreshRequest) -> TokensOut:
        session = await self.ctx.sessions.refresh(body.refresh_token, ip=self.client_ip)
        return TokensOut(
            access_token=session.access_token,
            refresh_token=session.refresh_token,
            expires_in=session.expires_in,
        )


class MeHandler(ApiHandler):
    path = "/auth/me"
    tag = "auth"

    @op.get(summary="The user the token belongs to", response=UserOut)
    async def me(self) -> UserOut:
        return user_out(await self.ctx.sessions.current_user(self.claims))


class LogoutHandler(ApiHandler):
    path = "/auth/logout"
    tag = "auth"

    @op.post(
        summary="Revoke the access token and the refresh token's session",
        body=LogoutRequest,
        response=None,
        description="The access token is refused (REST and WebSocket) until it expires.",
    )
    async def logout(self, body: LogoutRequest) -> op.Reply[None]:
        await self.ctx.sessions.logout(self.claims, body.refresh_token, ip=self.client_ip)
        return op.Reply(None, message="Logged out successfully")


HANDLERS: tuple[type[ApiHandler], ...] = (LoginHandler, RefreshHandler, MeHandler, LogoutHandler)
