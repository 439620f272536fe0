"""JWT access tokens: HS256, a ``kid`` header, claims sub/role/tier/iat/exp/jti.

The identity a connection or request acts as comes from these claims and nothing else.
A service token also has ``scope``, space-separated rights beyond its role (RFC 8693's
form of the claim), such as ``publish``; a token from a login has ``fam``, the id of
its refresh-token family, so that revoking the family (refresh-token reuse, logout)
revokes its access tokens too.

A good signature is not enough: the claims must have the shapes fxgate issues (integer
times, a known role, a lifetime no longer than ``max_ttl``), so that a token minted by
someone holding a key, or by a buggy tool, cannot carry a role-less or
hundred-year identity; and the user must still be active (:mod:`.user_status`).
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
    #: The refresh-token family of a login's token; None for issued (CLI) tokens.
    fam: str | None = None


def family_marker(family_id: str) -> str:
    """The revoked-jti entry that revokes every access token of a family."""
    return f"fam:{family_id}"


#: The longest lifetime a token may have by default: a year and a day, so that the
#: service tokens docs/rest.md describes (a year) are valid and a century is not.
DEFAULT_MAX_TTL = 366 * 86_400


def _bad(reason: str) -> AuthenticationError:
    return AuthenticationError(f"Authentication failed: {reason}")


def _int_claim(payload: dict[str, object], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"malformed claim {name}")
    return value


def _str_claim(payload: dict[str, object], name: str, default: str | None = None) -> str:
    value = payload.get(name, default)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise _bad(f"malformed claim {name}")
    return value


class TokenService:
    def __init__(
        self,
        keyring: KeyRing,
        *,
        default_ttl: int = 900,
        leeway: int = 0,
        max_ttl: int = DEFAULT_MAX_TTL,
        is_revoked: Callable[[str], Awaitable[bool]] | None = None,
        is_active: Callable[[str], Awaitable[bool]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keyring = keyring
        self.default_ttl = default_ttl
        self.leeway = leeway
        self.max_ttl = max_ttl
        self._is_revoked = is_revoked
        self._is_active = is_active
        self._clock = clock

    def issue(
        self,
        user_id: str,
        role: Role | str,
        *,
        tier: str = "free",
        ttl: int | None = None,
        scopes: Iterable[Scope | str] = (),
        family: str | None = None,
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
            fam=family,
        )
        if claims.exp - claims.iat > self.max_ttl:
            raise ValueError(f"a token may live at most {self.max_ttl} s (auth.max_token_ttl)")
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
        if family is not None:
            payload["fam"] = family
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
                options={"require": ["sub", "exp", "iat", "jti", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise _bad("token expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _bad(f"missing claim {exc.claim}") from None
        except jwt.PyJWTError:
            raise _bad("invalid token") from None
        claims = self._claims(payload, kid)
        if self._is_revoked is not None:
            if await self._is_revoked(claims.jti):
                raise _bad("token revoked")
            if claims.fam is not None and await self._is_revoked(family_marker(claims.fam)):
                raise _bad("session revoked")
        if self._is_active is not None and not await self._is_active(claims.sub):
            raise AuthenticationError("Account disabled or removed")
        return claims

    def _claims(self, payload: dict[str, object], kid: str) -> Claims:
        """The claims, if they have the shapes fxgate issues (PyJWT checked only the
        signature, presence and expiry: it reads ``"exp": "9999999999"`` as a number)."""
        now = self._clock()
        iat, exp = _int_claim(payload, "iat"), _int_claim(payload, "exp")
        if iat > now + self.leeway + 1:
            raise _bad("token issued in the future")
        if exp <= iat or exp - iat > self.max_ttl:
            raise _bad("token lifetime too long")
        try:
            role = Role(_str_claim(payload, "role"))
        except ValueError:
            raise _bad("unknown role") from None
        scope = payload.get("scope", "")
        try:
            if not isinstance(scope, str):
                raise ValueError(scope)
            scopes = frozenset(Scope(s) for s in scope.split())
        except ValueError:
            raise _bad("unknown scope") from None
        fam = payload.get("fam")
        return Claims(
            sub=_str_claim(payload, "sub"),
            role=role,
            tier=_str_claim(payload, "tier", "free"),
            iat=iat,
            exp=exp,
            jti=_str_claim(payload, "jti"),
            kid=kid,
            scopes=scopes,
            fam=None if fam is None else _str_claim(payload, "fam"),
        )
