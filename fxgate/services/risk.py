"""Pre-trade risk checks, and the daily-loss watch that warns before the limit is hit.

Checks run in the trading service before a request reaches any broker, paper or MT5, so a
limit holds the same way whichever broker is behind it. They look at an account snapshot,
the open positions and the margin the broker says the order needs (MT5
``order_calc_margin``); they change nothing.

Only orders that add exposure are held back: on a netting account an order that only
reduces the position on its symbol passes the position-count, daily-loss and margin
checks, so that a trader at a limit can always get out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fxgate.domain.errors import InsufficientBalanceError, invalid_field, refused
from fxgate.domain.market import SymbolSpec
from fxgate.domain.money import ZERO, round_price
from fxgate.domain.timefmt import iso_ms
from fxgate.domain.trading import (
    Account,
    AccountMode,
    OrderRequest,
    Position,
    check_volume,
)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Per-user limits; ``None`` switches a limit off.

    ``max_daily_loss`` is in the account currency and counts realised plus floating P&L
    since the start of the UTC day. ``min_volume``/``max_volume`` narrow the symbol's own
    volume range per order. ``alert_levels`` are the percentages of ``max_daily_loss`` at
    which the monitor raises an alert, with their severities.
    """

    max_open_positions: int | None = 100
    max_daily_loss: Decimal | None = None
    min_volume: Decimal | None = None
    max_volume: Decimal | None = None
    alert_levels: tuple[tuple[int, str], ...] = ((80, "WARNING"), (100, "CRITICAL"))


def adds_exposure(request: OrderRequest, account: Account, positions: Sequence[Position]) -> bool:
    """Whether the order would open or grow a position (always, on a hedging account)."""
    if account.mode is AccountMode.HEDGING:
        return True
    for pos in positions:
        if pos.symbol == request.symbol and pos.is_open:
            return pos.side is request.side or request.volume > pos.volume
    return True


def daily_loss(account: Account, now: float) -> Decimal:
    """The day's loss (positive) so far; zero on a day the account has not started yet."""
    if account.day_start != time.strftime("%Y-%m-%d", time.gmtime(now)):
        return ZERO
    return max(ZERO, account.day_start_equity - account.equity)


def check_order(
    request: OrderRequest,
    *,
    spec: SymbolSpec,
    account: Account,
    positions: Sequence[Position],
    required_margin: Decimal,
    limits: RiskLimits,
    now: float,
) -> None:
    """Raise the error a trader should see if ``request`` breaks a limit.

    ``VALIDATION_ERROR`` for a volume outside the symbol's or the user's range or off the
    volume step; ``TRADING_ERROR`` at the open-position or daily-loss limit;
    ``INSUFFICIENT_BALANCE_ERROR`` when ``required_margin`` exceeds the free margin.
    """
    check_volume(spec, request.volume)
    if limits.min_volume is not None and request.volume < limits.min_volume:
        raise invalid_field(
            "volume",
            f"Volume {request.volume} is below your minimum of {limits.min_volume} lots",
            "below_user_minimum",
            minVolume=str(limits.min_volume),
        )
    if limits.max_volume is not None and request.volume > limits.max_volume:
        raise invalid_field(
            "volume",
            f"Volume {request.volume} is above your maximum of {limits.max_volume} lots",
            "above_user_maximum",
            maxVolume=str(limits.max_volume),
        )
    if not adds_exposure(request, account, positions):
        return
    opens_new = account.mode is AccountMode.HEDGING or not any(
        p.symbol == request.symbol and p.is_open for p in positions
    )
    open_count = sum(1 for p in positions if p.is_open)
    if (
        opens_new
        and limits.max_open_positions is not None
        and open_count >= limits.max_open_positions
    ):
        raise refused(
            f"You already have {open_count} open positions, the most allowed",
            "max_open_positions",
            maxOpenPositions=limits.max_open_positions,
        )
    loss = daily_loss(account, now)
    if limits.max_daily_loss is not None and loss >= limits.max_daily_loss:
        raise refused(
            "The daily loss limit is reached; new positions are blocked until 00:00 UTC",
            "daily_loss_limit",
            dailyLoss=str(loss),
            maxDailyLoss=str(limits.max_daily_loss),
        )
    if required_margin > account.free_margin:
        raise InsufficientBalanceError(
            f"Not enough free margin: {required_margin} {account.currency} needed, "
            f"{account.free_margin} free",
            details={
                "reason": "insufficient_margin",
                "required": str(required_margin),
                "freeMargin": str(account.free_margin),
            },
        )


_TITLES = {
    "WARNING": "Daily Loss Limit Approaching",
    "CRITICAL": "Daily Loss Limit Reached",
}


class DailyLossMonitor:
    """Watches account snapshots and says, once per level per UTC day and user, when the
    day's loss crosses an alert level (80 % of the limit by default).

    Feed it every account snapshot (it is cheap: a subtraction and a dict lookup); it
    answers with seed 001's ``alert`` payload, or ``None``. ``mark`` restores what was
    already announced today after a restart, so that a restart does not repeat an alert.
    """

    def __init__(
        self,
        limits: RiskLimits,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: f"alert_{uuid.uuid4().hex[:16]}",
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._new_id = new_id
        self._announced: dict[str, tuple[str, int]] = {}  # user -> (day, highest level)

    def mark(self, user_id: str, day: str, level: int) -> None:
        self._announced[user_id] = (day, level)

    def observe(
        self, account: Account, max_daily_loss: Decimal | None = None
    ) -> dict[str, Any] | None:
        """The alert to publish for this snapshot, if it crosses a new level today.

        ``max_daily_loss`` overrides the limit for this user (e.g. a strategy's own).
        """
        limit = max_daily_loss if max_daily_loss is not None else self._limits.max_daily_loss
        if limit is None or limit <= 0:
            return None
        now = self._clock()
        loss = daily_loss(account, now)
        if loss <= 0:
            return None
        percent = loss / limit * 100
        crossed = [(lv, sev) for lv, sev in self._limits.alert_levels if percent >= lv]
        if not crossed:
            return None
        level, severity = max(crossed)
        day = account.day_start
        seen_day, seen_level = self._announced.get(account.user_id, ("", -1))
        if seen_day == day and seen_level >= level:
            return None
        self._announced[account.user_id] = (day, level)
        current = float(round_price(percent, 1))  # one decimal, half up, as seed 001 shows it
        return {
            "alertId": self._new_id(),
            "type": "RISK_LIMIT",
            "severity": severity,
            "title": _TITLES.get(severity, "Daily Loss Limit"),
            "message": f"Daily loss has reached {current:g}% of the maximum limit",
            "threshold": level,
            "current": current,
            "createdAt": iso_ms(now),
            "entity": {"type": "USER", "id": account.user_id},
            "actions": ["ACKNOWLEDGE", "VIEW_DETAILS"],
        }
