"""``market_session``: which FX sessions are open, from the clock alone.

Standard-time hours in UTC (no daylight saving: the label is a guide for a dashboard,
not a trading calendar): Sydney 22:00-07:00, Tokyo 00:00-09:00, London 08:00-17:00,
New York 13:00-22:00. Where two overlap the label names both (``london_new_york``);
from Friday 22:00 to Sunday 22:00 UTC the market is ``closed``, as the paper market's
``forex`` hours are.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: (name, opens, closes) in UTC hours; a session that wraps midnight has opens > closes.
SESSIONS = (("sydney", 22, 7), ("tokyo", 0, 9), ("london", 8, 17), ("new_york", 13, 22))


def _open(hour: float, opens: int, closes: int) -> bool:
    return opens <= hour < closes if opens < closes else hour >= opens or hour < closes


def market_session(ts: float) -> str:
    t = datetime.fromtimestamp(ts, UTC)
    weekday, hour = t.weekday(), t.hour + t.minute / 60
    if weekday == 5 or (weekday == 4 and hour >= 22) or (weekday == 6 and hour < 22):
        return "closed"
    names = [name for name, opens, closes in SESSIONS if _open(hour, opens, closes)]
    return "_".join(names) if names else "closed"
