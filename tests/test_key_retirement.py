"""Which signing keys ``fxgate keys prune`` retires, in memory (a ring, a clock).

Through the CLI against a real state directory: tests/test_cli.py's ``test_keys_prune_*``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from fxgate.domain.errors import ConflictError
from fxgate.services.auth.retirement import Verdict, plan_retirement, prune

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86400


@dataclass(frozen=True)
class Key:
    kid: str
    created_at: datetime
    active: bool = False
    retired_at: datetime | None = None


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


RING = [
    Key("k1", ago(days=60), retired_at=ago(days=30)),
    Key("k2", ago(days=50)),
    Key("k3", ago(days=40)),
    Key("k4", ago(hours=3), active=True),
]


def test_a_key_is_out_of_service_from_its_successors_creation() -> None:
    plan = plan_retirement(RING, now=NOW, grace=DAY)
    assert plan.active is RING[3]
    assert plan.verdicts == (
        Verdict("k2", "retire", ago(days=40), 40 * DAY),  # replaced by k3 40 days ago
        Verdict("k3", "keep", ago(hours=3), 3 * 3600),  # old, but signed until 3 h ago
    )


def test_the_key_active_until_a_rotation_just_now_is_kept_whatever_the_grace() -> None:
    ring = [*RING[:3], replace(RING[3], active=False), Key("k5", NOW, active=True)]
    plan = plan_retirement(ring, now=NOW, grace=0)
    verdicts = {v.kid: v.action for v in plan.verdicts}
    assert verdicts == {"k2": "retire", "k3": "retire", "k4": "keep"}


def test_the_grace_is_a_bound_not_reached_by_a_key_out_exactly_that_long() -> None:
    verdicts = plan_retirement(RING, now=NOW, grace=3 * 3600).verdicts
    assert {v.kid: v.action for v in verdicts} == {"k2": "retire", "k3": "keep"}
    verdicts = plan_retirement(RING, now=NOW, grace=3 * 3600 - 1).verdicts
    assert {v.kid: v.action for v in verdicts} == {"k2": "retire", "k3": "retire"}


def test_a_standby_key_newer_than_the_active_one_is_not_yet_in_service() -> None:
    """A rotation by another process that has not finished: its key is kept."""
    ring = [*RING, Key("k9", NOW)]
    verdicts = plan_retirement(ring, now=NOW + timedelta(days=9), grace=DAY).verdicts
    assert Verdict("k9", "keep") in verdicts


def test_no_active_key_plans_nothing_and_two_are_refused() -> None:
    assert plan_retirement(RING[:3], now=NOW, grace=0).verdicts == ()
    with pytest.raises(ValueError, match="2 active keys: k3 k4"):
        plan_retirement([*RING[:2], replace(RING[2], active=True), RING[3]], now=NOW, grace=0)


class Ring:
    """A key ring whose ``retire`` of some kids fails, as when another process got there
    first (False) or made the key active again (a conflict)."""

    def __init__(self, keys: list[Key], *, gone: set[str], conflict: set[str]) -> None:
        self.keys = keys
        self.gone, self.conflict = gone, conflict
        self.retired: list[str] = []

    async def load(self) -> None:
        return None

    def ring(self) -> Sequence[Key]:
        return self.keys

    async def retire(self, kid: str) -> bool:
        if kid in self.conflict:
            raise ConflictError("the active signing key cannot be retired; rotate first")
        if kid in self.gone:
            return False
        self.retired.append(kid)
        return True


async def test_prune_carries_on_past_a_failed_retirement() -> None:
    keys = [Key(f"k{i}", ago(days=50 - i)) for i in range(4)] + [Key("k9", NOW, active=True)]
    ring = Ring(keys, gone={"k0"}, conflict={"k1"})
    audited: list[str] = []

    async def audit(kid: str) -> None:
        audited.append(kid)

    _, outcomes = await prune(ring, now=NOW, grace=DAY, on_retired=audit)
    assert [(o.verdict.kid, o.retired) for o in outcomes] == [
        ("k0", False),
        ("k1", False),
        ("k2", True),
        ("k3", None),  # kept: it signed until k9 was made, just now
    ]
    assert "rotate first" in outcomes[1].error
    assert ring.retired == audited == ["k2"]


async def test_a_dry_run_retires_nothing() -> None:
    ring = Ring(list(RING), gone=set(), conflict=set())
    _, outcomes = await prune(ring, now=NOW, grace=0, dry_run=True)
    assert [(o.verdict.action, o.retired) for o in outcomes] == [("retire", None)] * 2
    assert ring.retired == []
