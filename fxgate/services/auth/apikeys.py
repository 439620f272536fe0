"""API keys and their HMAC-SHA256 signatures (seed 004), for programs rather than people.

A key is a public id (``api_key``) and a secret shown once at creation. A program proves
it holds the secret by signing a timestamped string::

    signature = hex(HMAC-SHA256(secret, f"{timestamp}\\n{api_key}\\n{METHOD}\\n{path}"))

with ``timestamp`` in epoch milliseconds (JavaScript's ``Date.now()``, as seed 004's
client sends it). A signature is accepted once, within ``window`` seconds of the
server's clock; the store's nonce table refuses a replay even from a second process.
The WebSocket dialect of seed 004 verifies with :meth:`ApiKeyService.verify_signature`
too, naming its own method and path.

HMAC needs the secret itself, so it cannot be hashed like a password: it is sealed with
the master key (:mod:`fxgate.services.auth.sealing`) before it reaches the store.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from fxgate.domain.errors import AuthenticationError, FxgateError, NotFoundError
from fxgate.services.auth.sealing import Sealer, SealError
from fxgate.services.ports.store.api_keys import ApiKeyStore
from fxgate.services.ports.store.audit import AuditLog
from fxgate.services.ports.store.records import ApiKey

#: What the REST login signs: the path without the ``/api/v1`` prefix, so that one
#: client works against either mount.
LOGIN_METHOD = "POST"
LOGIN_PATH = "/auth/login"

log = logging.getLogger(__name__)

KEY_PREFIX = "fxk_"
BAD_KEY = "Invalid API key or signature"


def signing_string(
    timestamp: int, api_key: str, method: str = LOGIN_METHOD, path: str = LOGIN_PATH
) -> str:
    return f"{timestamp}\n{api_key}\n{method.upper()}\n{path}"


def sign(
    secret: str,
    timestamp: int,
    api_key: str,
    method: str = LOGIN_METHOD,
    path: str = LOGIN_PATH,
) -> str:
    """The signature a client sends: lowercase hex HMAC-SHA256."""
    message = signing_string(timestamp, api_key, method, path).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def new_key_id() -> str:
    return KEY_PREFIX + secrets.token_hex(12)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class ApiKeyService:
    def __init__(
        self,
        store: ApiKeyStore,
        audit: AuditLog,
        *,
        sealer: Sealer,
        window: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.audit = audit
        self._sealer = sealer
        self.window = window
        self._clock = clock

    async def create(self, user_id: str, name: str = "", *, ip: str = "") -> ApiKey:
        """A new key for ``user_id``; its ``secret`` must be shown to the owner now,
        as no endpoint returns it again (the store holds it sealed)."""
        secret = new_secret()
        try:
            sealed = self._sealer.seal(secret)
        except SealError as exc:
            log.error("cannot create an API key: %s", exc)
            raise FxgateError("API keys are unavailable: see the server's log") from None
        key = await self.store.create(
            user_id=user_id, key_id=new_key_id(), secret=sealed, name=name
        )
        await self.audit.append(user_id, "apikey.create", key.key_id, {"name": name, "ip": ip})
        return replace(key, secret=secret)

    async def list(self, user_id: str) -> list[ApiKey]:
        return await self.store.of_user(user_id)

    async def revoke(self, user_id: str, key_id: str, *, ip: str = "") -> ApiKey:
        """Revoke one of the user's own keys; another user's key is "not found", never
        "forbidden", so ids cannot be probed."""
        key = await self.store.get(key_id)
        if key is None or key.user_id != user_id:
            raise NotFoundError("API key not found")
        if key.active:
            await self.store.revoke(key_id)
            await self.audit.append(user_id, "apikey.revoke", key_id, {"ip": ip})
        revoked = await self.store.get(key_id)
        return revoked or key

    async def verify_signature(
        self,
        api_key: str,
        signature: str,
        timestamp: int,
        *,
        method: str = LOGIN_METHOD,
        path: str = LOGIN_PATH,
    ) -> ApiKey:
        """The key, if the signature is good, fresh and new; else AuthenticationError.

        An unknown key, a revoked key and a wrong signature get one message, so a
        caller cannot tell which key ids exist.
        """
        now_ms = int(self._clock() * 1000)
        if abs(now_ms - timestamp) > self.window * 1000:
            raise AuthenticationError(
                f"Request timestamp is more than {self.window} s from the server's clock"
                " (send epoch milliseconds)"
            )
        key = await self.store.get(api_key)
        # A revoked key's secret is not even unsealed: it verifies nothing, and keys
        # sealed with a master key since lost are revoked to be done with them.
        if key is None or not key.active:
            raise AuthenticationError(BAD_KEY)
        expected = sign(self._secret(key), timestamp, api_key, method, path)
        # Bytes, not str: compare_digest refuses non-ASCII strings, and a client's
        # garbage must be a 401 like any other wrong signature.
        given = signature.lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given):
            raise AuthenticationError(BAD_KEY)
        # The nonce need only outlive the window: after it the timestamp check refuses.
        expires = datetime.fromtimestamp(timestamp / 1000 + self.window + 1, UTC)
        nonce = f"apikey:{api_key}:{timestamp}:{expected}"
        if not await self.store.remember_nonce(nonce, expires):
            raise AuthenticationError("Signature already used (replay refused)")
        return key

    def _secret(self, key: ApiKey) -> str:
        """The key's secret in clear; a sealed one that does not decrypt is the server's
        fault (a 500), not the client's. The reason, which names files, goes to the log
        only."""
        try:
            return self._sealer.unseal(key.secret, what=f"API key {key.key_id}")
        except SealError as exc:
            log.error("cannot verify a signature: %s", exc)
            raise FxgateError("API keys are unavailable: see the server's log") from None
