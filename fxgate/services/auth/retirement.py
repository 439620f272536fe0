"""Retiring the signing keys that have been out of service for longer than a grace period.

A key stops signing when the next key is created, so a standby key's time out of service
is counted from the creation of its successor, not from its own creation: the key that
was active until the last rotation is always kept, however old it is, because tokens it
signed a moment ago are still valid. The grace period should be at least the
access-token lifetime, or tokens are refused before they expire.

``fxgate keys prune`` runs this (and ``scripts/rotate-keys`` runs that after a rotation);
the plan is a pure function of the ring and the clock, so it is tested in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from fxgate.domain.errors import FxgateError


class KeyInfo(Protocol):
    """What the plan reads of a signing key."""

    @property
    def kid(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def active(self) -> bool: ...

    @property
    def retired_at(self) -> datetime | None: ...


class RetiringRing(Protocol):
    """The part of :class:`~fxgate.services.auth.keyring.KeyRing` a prune uses."""

    async def load(self) -> None: ...

    def ring(self) -> Sequence[KeyInfo]: ...

    async def retire(self, kid: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """What becomes of one standby key.

    ``out_since`` is when it stopped signing (its successor's creation) and ``age`` the
    whole seconds since; both are None for a key newer than the active one (made by a
    rotation that another process has not finished), which is not yet in service."""

    kid: str
    action: Literal["retire", "keep"]
    out_since: datetime | None = None
    age: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    active: KeyInfo | None
    verdicts: tuple[Verdict, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    #: None: kept, or a dry run; otherwise whether the store retired it.
    retired: bool | None = None
    error: str = ""


def plan_retirement(keys: Iterable[KeyInfo], *, now: datetime, grace: int) -> Plan:
    """Which standby keys stopped signing more than ``grace`` seconds before ``now``.

    Raises ValueError when the ring has more than one active key (a store that broke
    its own rule): nothing is planned from a ring that cannot be understood."""
    ordered = sorted(keys, key=lambda k: (k.created_at, k.kid))
    active = [k for k in ordered if k.active and k.retired_at is None]
    if len(active) > 1:
        raise ValueError(f"{len(active)} active keys: {' '.join(k.kid for k in active)}")
    if not active:
        return Plan(None, ())
    current = active[0]
    verdicts: list[Verdict] = []
    for index, key in enumerate(ordered):
        if key.active or key.retired_at is not None:
            continue
        if key.created_at >= current.created_at:
            verdicts.append(Verdict(key.kid, "keep"))
            continue
        out_since = ordered[index + 1].created_at
        age = int((now - out_since).total_seconds())
        verdicts.append(Verdict(key.kid, "retire" if age > grace else "keep", out_since, age))
    return Plan(current, tuple(verdicts))


async def prune(
    ring: RetiringRing,
    *,
    now: datetime,
    grace: int,
    dry_run: bool = False,
    on_retired: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[Plan, list[Outcome]]:
    """Plan from the ring as the store has it now, then retire what the plan says.

    A retirement that fails (the key was retired or made active by another process in
    the meantime) is reported in its outcome and the others still go ahead."""
    await ring.load()
    plan = plan_retirement(ring.ring(), now=now, grace=grace)
    outcomes: list[Outcome] = []
    for verdict in plan.verdicts:
        if verdict.action != "retire" or dry_run:
            outcomes.append(Outcome(verdict))
            continue
        try:
            ok = await ring.retire(verdict.kid)
        except FxgateError as exc:
            outcomes.append(Outcome(verdict, retired=False, error=str(exc)))
            continue
        if ok and on_retired is not None:
            await on_retired(verdict.kid)
        outcomes.append(Outcome(verdict, ok, "" if ok else "no such key, or retired already"))
    return plan, outcomes
