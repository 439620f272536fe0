"""The signing-key ring, kept in the store so every process and the CLI share it.

A daemon re-reads the ring every ``refresh`` seconds and whenever a token names a
``kid`` it does not know, so ``fxgate keys rotate`` in another process takes effect
without a restart: new tokens are signed with the new key, tokens signed by older keys
keep working until their key is retired.

The secrets are sealed (:mod:`fxgate.services.auth.sealing`) before they reach the store
and unsealed as the ring is read; a retired key's secret is never unsealed, as it
verifies nothing. A ring that cannot be read whole is refused before anything is
written, so a process with the wrong master key cannot add a key the others cannot read.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from fxgate.services.activity import NoActivity
from fxgate.services.auth.sealing import Sealer, SealError
from fxgate.services.ports.activity import ActivityLog
from fxgate.services.ports.store.records import SigningKey
from fxgate.services.ports.store.signing_keys import SigningKeyStore

log = logging.getLogger(__name__)


#: The least time between two re-reads for tokens naming an unknown ``kid``: a flood of
#: made-up kids costs the store at most one read per this many seconds.
MISS_RELOAD_GAP = 0.2


def key_status(key: SigningKey) -> str:
    """``active`` signs new tokens; ``standby`` only verifies; ``retired`` does neither."""
    if key.retired_at is not None:
        return "retired"
    return "active" if key.active else "standby"


def new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def new_kid() -> str:
    return datetime.now(UTC).strftime("k%Y%m%d%H%M%S") + secrets.token_hex(2)


class KeyRing:
    def __init__(
        self,
        store: SigningKeyStore,
        *,
        sealer: Sealer,
        refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        activity: ActivityLog | None = None,
    ) -> None:
        self._store = store
        #: Tells admins' dashboards of rotations and retirements (kids only, never secrets).
        self._activity = activity or NoActivity()
        self._sealer = sealer
        self._refresh = refresh
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._loaded_at = float("-inf")
        self._load_started = float("-inf")
        self._miss_lock = asyncio.Lock()
        self._lock = asyncio.Lock()
        self._on_retired: list[Callable[[set[str]], None]] = []

    def on_retired(self, fn: Callable[[set[str]], None]) -> None:
        """Call ``fn(kids)`` when a reload finds keys retired since the last one."""
        self._on_retired.append(fn)

    async def load(self) -> None:
        """Re-read the ring; ``SealError`` (and the old ring kept) if a key that still
        verifies cannot be unsealed."""
        async with self._lock:
            self._load_started = self._clock()
            keys = {k.kid: self._unsealed(k) for k in await self._store.all()}
            newly_retired = {
                kid
                for kid, k in keys.items()
                if k.retired_at is not None
                and kid in self._keys
                and self._keys[kid].retired_at is None
            }
            before = self.active_or_none()
            self._keys = keys
            self._loaded_at = self._clock()
        after = self.active_or_none()
        if before is not None and after is not None and after.kid != before.kid:
            self._activity.system(
                "INFO",
                f"Signing key rotated: new tokens are signed with {after.kid}",
                "auth.keyring",
                kid=after.kid,
                previousKid=before.kid,
            )
        if newly_retired:
            log.info("signing keys retired", extra={"kids": sorted(newly_retired)})
            self._activity.system(
                "INFO",
                f"Signing keys retired: {', '.join(sorted(newly_retired))}",
                "auth.keyring",
                kids=",".join(sorted(newly_retired)),
            )
            for fn in self._on_retired:
                fn(newly_retired)

    def _unsealed(self, key: SigningKey) -> SigningKey:
        if key.retired_at is not None:
            return replace(key, secret="")
        return replace(key, secret=self._sealer.unseal(key.secret, what=f"signing key {key.kid}"))

    async def _reload(self) -> None:
        """A reload on the request path: a key that cannot be unsealed (added by a process
        with another master key) is logged, and the ring read before stays in use."""
        try:
            await self.load()
        except SealError as exc:
            self._loaded_at = self._clock()  # not again on every request
            log.error("could not re-read the signing keys: %s", exc)

    async def maybe_reload(self) -> None:
        if self._clock() - self._loaded_at >= self._refresh:
            await self._reload()

    async def ensure_active(self) -> SigningKey:
        """The active key, creating the first one on a fresh state directory."""
        await self.load()
        key = self.active_or_none()
        if key is None:
            added = await self._add()
            log.info("created the first signing key", extra={"kid": added.kid})
            await self.load()
            key = self.active_or_none() or self._keys[added.kid]
        return key

    async def rotate(self) -> SigningKey:
        await self.load()  # refuse before writing if this process cannot read the ring
        added = await self._add()
        await self.load()
        return self._keys[added.kid]

    async def _add(self) -> SigningKey:
        return await self._store.add(kid=new_kid(), secret=self._sealer.seal(new_secret()))

    async def retire(self, kid: str) -> bool:
        await self.load()
        ok = await self._store.retire(kid)
        await self.load()
        return ok

    def active_or_none(self) -> SigningKey | None:
        for k in self._keys.values():
            if k.active and k.retired_at is None:
                return k
        return None

    def active(self) -> SigningKey:
        key = self.active_or_none()
        if key is None:
            raise RuntimeError("no active signing key: run `fxgate keys rotate`")
        return key

    async def lookup(self, kid: str) -> SigningKey | None:
        """The key named ``kid``, re-reading the ring first if it is unknown (a rotation
        by another process)."""
        await self.maybe_reload()
        key = self._keys.get(kid)
        if key is None:
            await self._read_started_after(self._clock())
            key = self._keys.get(kid)
        return key

    async def _read_started_after(self, asked: float) -> None:
        """Make sure a read of the ring began after ``asked``.

        A token naming a new key was signed after the key was stored, so only a read
        begun after the token arrived is sure to see the key; one that merely finished
        recently may have begun before the rotation. Callers missing at the same time
        share one read, and reads for misses come at most one per ``MISS_RELOAD_GAP``:
        a made-up kid waits for its turn instead of costing the store a read each.
        """
        async with self._miss_lock:
            if self._load_started >= asked:
                return
            wait = self._load_started + MISS_RELOAD_GAP - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._reload()

    def ring(self) -> list[SigningKey]:
        return sorted(self._keys.values(), key=lambda k: k.created_at)
