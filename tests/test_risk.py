"""Pre-trade risk checks and the daily-loss alert, as a trader at a limit meets them."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from fxgate.domain.errors import InsufficientBalanceError, TradingError, ValidationError
from fxgate.domain.market import DEFAULT_SYMBOLS
from fxgate.domain.trading import (
    Account,
    AccountMode,
    OrderRequest,
    OrderType,
    Position,
    Side,
)
from fxgate.services.risk import DailyLossMonitor, RiskLimits, check_order

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
EURUSD = next(s for s in DEFAULT_SYMBOLS if s.symbol == "EURUSD")


def account(equity: str = "10000.00", mode: AccountMode = AccountMode.HEDGING) -> Account:
    return Account(
        user_id="user_456",
        currency="USD",
        leverage=100,
        mode=mode,
        balance=D("10000.00"),
        equity=D(equity),
        free_margin=D(equity),
        created_at=T0,
        updated_at=T0,
        day_start="2023-11-14",
        day_start_equity=D("10000.00"),
    )


def position(ticket: int, side: Side = Side.BUY, volume: str = "1") -> Position:
    return Position(
        ticket=ticket,
        user_id="user_456",
        symbol="EURUSD",
        side=side,
        volume=D(volume),
        open_price=D("1.08500"),
        current_price=D("1.08490"),
        opened_at=T0,
        updated_at=T0,
    )


def request(volume: str = "1", side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest("EURUSD", OrderType.MARKET, side, D(volume))


def check(
    req: OrderRequest,
    acc: Account | None = None,
    positions: tuple[Position, ...] = (),
    margin: str = "1085.00",
    limits: RiskLimits | None = None,
    now: float = T0,
) -> None:
    check_order(
        req,
        spec=EURUSD,
        account=acc or account(),
        positions=positions,
        required_margin=D(margin),
        limits=limits or RiskLimits(),
        now=now,
    )


def test_an_ordinary_order_passes() -> None:
    check(request("0.10"))


@pytest.mark.parametrize("volume", ["0", "-1", "0.001", "100.01", "0.015"])
def test_volumes_outside_the_symbol_range_or_step_are_invalid(volume: str) -> None:
    with pytest.raises(ValidationError):
        check(request(volume))


def test_the_users_own_volume_range() -> None:
    limits = RiskLimits(min_volume=D("0.10"), max_volume=D("5"))
    with pytest.raises(ValidationError, match="below your minimum"):
        check(request("0.05"), limits=limits)
    with pytest.raises(ValidationError, match="above your maximum"):
        check(request("6"), limits=limits)
    check(request("5"), limits=limits)


def test_the_open_position_limit() -> None:
    limits = RiskLimits(max_open_positions=2)
    check(request(), positions=(position(1),), limits=limits)
    with pytest.raises(TradingError):
        check(request(), positions=(position(1), position(2)), limits=limits)


def test_a_netting_order_that_only_reduces_passes_every_limit() -> None:
    acc = replace(account("8000.00", AccountMode.NETTING), free_margin=D("0"))
    limits = RiskLimits(max_open_positions=1, max_daily_loss=D("1000"))
    long = (position(1, volume="2"),)
    check(request("1", Side.SELL), acc, long, limits=limits)  # reduces: allowed
    with pytest.raises(TradingError):
        check(request("3", Side.SELL), acc, long, limits=limits)  # reverses: adds exposure


def test_the_daily_loss_limit_blocks_new_exposure_until_the_next_day() -> None:
    limits = RiskLimits(max_daily_loss=D("500"))
    down = account("9500.00")  # 500.00 lost today
    with pytest.raises(TradingError, match="daily loss"):
        check(request(), down, limits=limits)
    check(request(), account("9500.01"), limits=limits)
    check(request(), down, limits=limits, now=T0 + 2 * 3600)  # a new UTC day


def test_not_enough_free_margin() -> None:
    acc = replace(account(), free_margin=D("1084.99"))
    with pytest.raises(InsufficientBalanceError) as info:
        check(request(), acc, margin="1085.00")
    assert info.value.details == {
        "reason": "insufficient_margin",
        "required": "1085.00",
        "freeMargin": "1084.99",
    }
    check(request(), replace(acc, free_margin=D("1085.00")), margin="1085.00")


def test_daily_loss_alert_at_80_percent_once_per_day() -> None:
    ids = iter(["alert_1", "alert_2", "alert_3"])
    clock = [T0]
    monitor = DailyLossMonitor(
        RiskLimits(max_daily_loss=D("1000")), clock=lambda: clock[0], new_id=lambda: next(ids)
    )
    assert monitor.observe(account("9201.00")) is None  # 79.9 %
    alert = monitor.observe(account("9195.00"))  # 805 / 1000 = 80.5 %
    assert alert == {
        "alertId": "alert_1",
        "type": "RISK_LIMIT",
        "severity": "WARNING",
        "title": "Daily Loss Limit Approaching",
        "message": "Daily loss has reached 80.5% of the maximum limit",
        "threshold": 80,
        "current": 80.5,
        "createdAt": "2023-11-14T22:13:20.000Z",
        "entity": {"type": "USER", "id": "user_456"},
        "actions": ["ACKNOWLEDGE", "VIEW_DETAILS"],
    }
    assert monitor.observe(account("9150.00")) is None  # still the same day
    assert monitor.observe(account("9195.00")) is None
    # the next UTC day, with a new baseline, warns again
    clock[0] = T0 + 2 * 3600
    next_day = replace(account("9195.00"), day_start="2023-11-15")
    again = monitor.observe(next_day)
    assert again is not None
    assert again["alertId"] == "alert_2"


def test_daily_loss_alert_is_critical_at_the_limit() -> None:
    monitor = DailyLossMonitor(RiskLimits(max_daily_loss=D("1000")), clock=lambda: T0)
    assert monitor.observe(account("9100.00"))["severity"] == "WARNING"  # type: ignore[index]
    critical = monitor.observe(account("8990.00"))  # 101 %
    assert critical is not None
    assert critical["severity"] == "CRITICAL"
    assert critical["threshold"] == 100
    assert critical["current"] == 101.0
    assert monitor.observe(account("8000.00")) is None


def test_a_stale_baseline_or_no_limit_raises_no_alert() -> None:
    monitor = DailyLossMonitor(RiskLimits(), clock=lambda: T0)
    assert monitor.observe(account("1.00")) is None  # no limit configured
    later = DailyLossMonitor(RiskLimits(max_daily_loss=D("100")), clock=lambda: T0 + 86400)
    assert later.observe(account("9000.00")) is None  # yesterday's baseline


def test_a_restart_does_not_repeat_todays_alert() -> None:
    monitor = DailyLossMonitor(RiskLimits(max_daily_loss=D("1000")), clock=lambda: T0)
    monitor.mark("user_456", "2023-11-14", 80)
    assert monitor.observe(account("9150.00")) is None
