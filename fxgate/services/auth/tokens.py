"""JWT access tokens: HS256, a ``kid`` header, claims sub/role/tier/iat/exp/jti.

The identity a connection or request acts as comes from these claims and nothing else.
A service token also has ``scope``, space-separated rights beyond its role (RFC 8693's
form of the claim), such as ``publish``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import jwt

from fxgate.domain.errors import AuthenticationError
from fxgate.domain.roles import Role, Scope
from fxgate.services.auth.keyring import KeyRing

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    role: Role
    tier: str
    iat: int
    exp: int
    jti: str
    kid: str
    scopes: frozenset[Scope] = frozenset()


class TokenService:
    def __init__(
        self,
        keyring: KeyRing,
        *,
        default_ttl: int = 900,
        leeway: int = 0,
        is_revoked: Callable[[str], Awaitable[bool]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keyring = keyring
        self.default_ttl = default_ttl
        self.leeway = leeway
        self._is_revoked = is_revoked
        self._clock = clock

    def issue(
        self,
        user_id: str,
        role: Role | str,
        *,
        tier: str = "free",
        ttl: int | None = None,
        scopes: Iterable[Scope | str] = (),
    ) -> tuple[str, Claims]:
        key = self.keyring.active()
        now = int(self._clock())
        claims = Claims(
            sub=user_id,
            role=Role(role),
            tier=tier,
            iat=now,
            exp=now + (ttl if ttl is not None else self.default_ttl),
            jti=secrets.token_hex(16),
            kid=key.kid,
            scopes=frozenset(Scope(s) for s in scopes),
        )
        payload: dict[str, object] = {
            "sub": claims.sub,
            "role": str(claims.role),
            "tier": claims.tier,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
        }
        if claims.scopes:
            payload["scope"] = " ".join(sorted(claims.scopes))
        token = jwt.encode(
            payload,
            key.secret,
            algorithm=ALGORITHM,
            headers={"kid": key.kid},
        )
        return token, claims

    async def verify(self, token: str) -> Claims:
        """Verified claims, or ``AuthenticationError`` saying why not (never the token)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("Authentication failed: malformed token") from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise AuthenticationError("Authentication failed: unsupported token")
        key = await self.keyring.lookup(kid)
        if key is None:
            raise AuthenticationError("Authentication failed: unknown signing key")
        if key.retired_at is not None:
            raise AuthenticationError("Authentication failed: signing key retired")
        try:
            payload = jwt.decode(
                token,
                key.secret,
                algorithms=[ALGORITHM],
                leeway=self.leeway,
                options={"require": ["sub", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("Authentication failed: token expired") from None
        except jwt.PyJWTError:
            raise AuthenticationError("Authentication failed: invalid token") from None
        try:
            role = Role(payload.get("role", "viewer"))
        except ValueError:
            raise AuthenticationError("Authentication failed: unknown role") from None
        scope = payload.get("scope", "")
        try:
            if not isinstance(scope, str):
                raise ValueError(scope)
            scopes = frozenset(Scope(s) for s in scope.split())
        except ValueError:
            raise AuthenticationError("Authentication failed: unknown scope") from None
        claims = Claims(
            sub=str(payload["sub"]),
            role=role,
            tier=str(payload.get("tier", "free")),
            iat=int(payload["iat"]),
            exp=int(payload["exp"]),
            jti=str(payload["jti"]),
            kid=kid,
            scopes=scopes,
        )
        if self._is_revoked is not None and await self._is_revoked(claims.jti):
            raise AuthenticationError("Authentication failed: token revoked")
        return claims
