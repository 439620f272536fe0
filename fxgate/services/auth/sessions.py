"""Log in, refresh, log out: the session rules of DESIGN.md "REST", with no HTTP in sight.

Refresh tokens are opaque random strings (``rt_`` + 43 URL-safe characters). The store
keeps only their SHA-256 as the ``jti``: a leaked database holds no usable refresh token,
and a random 256-bit token needs no slow hash. Every rotation issues a new token in the
same *family*; the old one is spent with a compare-and-set, so presenting it again is
reuse (a thief and the owner racing with one token) and revokes the whole family.

A family keeps the lifetime it started with: 7 days (``auth.refresh_token_ttl``), or
:data:`SHORT_SESSION_TTL` when the login said ``rememberMe: false``; each rotation
renews it (a sliding session), so an active user stays signed in.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fxgate.domain.errors import AuthenticationError
from fxgate.domain.roles import Role
from fxgate.services.auth.apikeys import ApiKeyService
from fxgate.services.auth.passwords import (
    hash_password_async,
    needs_rehash,
    verify_password_async,
)
from fxgate.services.auth.tokens import Claims, TokenService, family_marker
from fxgate.services.ports.store.audit import AuditLog
from fxgate.services.ports.store.records import ApiKey, RefreshToken, User, email_key
from fxgate.services.ports.store.sessions import SessionStore
from fxgate.services.ports.store.users import UserStore

#: Refresh-token lifetime for ``rememberMe: false``: a day, for a shared computer.
SHORT_SESSION_TTL = 86_400

REFRESH_PREFIX = "rt_"
BAD_LOGIN = "Invalid email or password"
BAD_REFRESH = "Invalid or expired refresh token"


def refresh_jti(token: str) -> str:
    """The id a refresh token is stored under: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """What a login or a refresh hands the client (seed 003's token fields)."""

    user: User
    access_token: str
    refresh_token: str
    expires_in: int
    claims: Claims


class SessionService:
    def __init__(
        self,
        users: UserStore,
        store: SessionStore,
        audit: AuditLog,
        tokens: TokenService,
        api_keys: ApiKeyService,
        *,
        access_ttl: int,
        refresh_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = users
        self.store = store
        self.audit = audit
        self.tokens = tokens
        self.api_keys = api_keys
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _audit(self, actor: str, action: str, target: str, **details: object) -> None:
        await self.audit.append(actor, action, target, details)

    # -- logging in --------------------------------------------------------------------

    async def login(
        self, email: str, password: str, *, remember_me: bool | None = None, ip: str = ""
    ) -> Session:
        """A session for a correct email and password.

        A wrong password and an unknown email fail alike, in message and in time (the
        password is hashed either way), so the API does not reveal who has an account.
        """
        user = await self.users.get_by_email(email)
        stored_hash = user.password_hash if user else None
        # argon2 takes tens to hundreds of milliseconds of CPU: off the event loop, on
        # the hashing pool (bounded, and behind the event loop for the CPU).
        ok = await verify_password_async(stored_hash, password)
        if user is None or not ok:
            await self._audit(
                user.id if user else "anonymous",
                "auth.login_failed",
                user.id if user else email_key(email),
                method="password",
                reason="bad_credentials",
                ip=ip,
            )
            raise AuthenticationError(BAD_LOGIN)
        if user.disabled:
            await self._audit(
                user.id, "auth.login_failed", user.id, method="password", reason="disabled", ip=ip
            )
            raise AuthenticationError("Account disabled")
        if stored_hash and needs_rehash(stored_hash):
            new_hash = await hash_password_async(password)
            await self.users.update(user.id, password_hash=new_hash)
        ttl = (
            self.refresh_ttl
            if remember_me is not False
            else min(self.refresh_ttl, SHORT_SESSION_TTL)
        )
        session = await self._open(user, family_id=secrets.token_hex(16), refresh_ttl=ttl)
        await self._audit(
            user.id,
            "auth.login",
            user.id,
            method="password",
            ip=ip,
            jti=session.claims.jti,
            remember_me=remember_me is not False,
        )
        return session

    async def login_with_api_key(
        self, api_key: str, signature: str, timestamp: int, *, ip: str = ""
    ) -> Session:
        """A session for a program that signed ``POST /auth/login`` with its key."""
        user, key = await self._check_api_key(api_key, signature, timestamp, ip=ip, via="")
        session = await self._open(user, family_id=secrets.token_hex(16))
        await self._audit(
            user.id,
            "auth.login",
            user.id,
            method="api_key",
            api_key=key.key_id,
            ip=ip,
            jti=session.claims.jti,
        )
        return session

    async def verify_api_key(
        self, api_key: str, signature: str, timestamp: int, *, ip: str = "", via: str = ""
    ) -> User:
        """The user behind a signed API-key login, for a socket that logs in once
        (seed 004's ``/ws/trading``): the same signed string, window, replay refusal and
        audit as :meth:`login_with_api_key`, but no token and no refresh-token session,
        since the connection itself is what stays logged in."""
        user, key = await self._check_api_key(api_key, signature, timestamp, ip=ip, via=via)
        await self._audit(
            user.id, "auth.login", user.id, method="api_key", api_key=key.key_id, ip=ip, via=via
        )
        return user

    async def _check_api_key(
        self, api_key: str, signature: str, timestamp: int, *, ip: str, via: str
    ) -> tuple[User, ApiKey]:
        extra = {"via": via} if via else {}
        try:
            key = await self.api_keys.verify_signature(api_key, signature, timestamp)
        except AuthenticationError as exc:
            await self._audit(
                "anonymous",
                "auth.login_failed",
                f"apikey:{api_key[:40]}",
                method="api_key",
                reason=exc.message,
                ip=ip,
                **extra,
            )
            raise
        user = await self.users.get(key.user_id)
        if user is None or user.disabled:
            await self._audit(
                key.user_id,
                "auth.login_failed",
                key.user_id,
                method="api_key",
                reason="disabled",
                ip=ip,
                **extra,
            )
            raise AuthenticationError("Account disabled")
        return user, key

    async def _open(self, user: User, *, family_id: str, refresh_ttl: int | None = None) -> Session:
        ttl = refresh_ttl if refresh_ttl is not None else self.refresh_ttl
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        await self.store.save_refresh_token(
            jti=refresh_jti(refresh),
            family_id=family_id,
            user_id=user.id,
            expires_at=self._now() + timedelta(seconds=ttl),
        )
        access, claims = self.tokens.issue(
            user.id, Role(user.role), tier=user.tier, ttl=self.access_ttl, family=family_id
        )
        return Session(user, access, refresh, self.access_ttl, claims)

    # -- refreshing ---------------------------------------------------------------------

    async def refresh(self, token: str, *, ip: str = "") -> Session:
        """Spend ``token`` for a new pair. The user's current role and tier go into the
        new access token, so a role change takes effect at the next refresh."""
        jti = refresh_jti(token)
        record = await self.store.get_refresh_token(jti)
        if record is None or record.revoked_at is not None or record.expires_at <= self._now():
            raise AuthenticationError(BAD_REFRESH)
        if not await self.store.mark_refresh_token_used(jti):
            revoked = await self.revoke_family(record.family_id)
            await self._audit(
                record.user_id,
                "auth.refresh_reuse",
                record.user_id,
                family=record.family_id,
                revoked=revoked,
                ip=ip,
            )
            raise AuthenticationError(
                "Refresh token already used: the session was revoked, log in again"
            )
        user = await self.users.get(record.user_id)
        if user is None or user.disabled:
            await self.revoke_family(record.family_id)
            raise AuthenticationError("Account disabled")
        return await self._open(user, family_id=record.family_id, refresh_ttl=_lifetime(record))

    async def revoke_family(self, family_id: str) -> int:
        """Revoke a session: its refresh tokens, and the access tokens issued from it
        (they carry the family as ``fam``; the marker outlives the last of them)."""
        revoked = await self.store.revoke_refresh_family(family_id)
        until = self._now() + timedelta(seconds=self.access_ttl + self.tokens.leeway + 60)
        await self.store.revoke_jti(family_marker(family_id), until)
        return revoked

    # -- logging out ----------------------------------------------------------------------

    async def logout(self, claims: Claims, refresh_token: str | None, *, ip: str = "") -> None:
        """End the session: the refresh family (if the token is the caller's) and the
        access token itself, which stays refused until it would have expired."""
        family = None
        if refresh_token:
            record = await self.store.get_refresh_token(refresh_jti(refresh_token))
            if record is not None and record.user_id == claims.sub:
                family = record.family_id
                await self.revoke_family(family)
        await self.store.revoke_jti(claims.jti, datetime.fromtimestamp(claims.exp, UTC))
        await self._audit(
            claims.sub, "auth.logout", claims.sub, jti=claims.jti, family=family, ip=ip
        )

    async def current_user(self, claims: Claims) -> User:
        user = await self.users.get(claims.sub)
        if user is None or user.disabled:
            raise AuthenticationError("Account disabled or removed")
        return user


def _lifetime(record: RefreshToken) -> int:
    return max(1, int((record.expires_at - record.created_at).total_seconds()))
