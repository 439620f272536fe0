"""The SQLite store's one timestamp text form reads back as the instant it was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fxgate.store.rules import utc
from fxgate.store.sqlite.tx import parse_ts, ts


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1999, 12, 31, 0, 0, 0, tzinfo=UTC),
        datetime(2024, 6, 1, 12, 0, 0, 5_000, tzinfo=timezone(timedelta(hours=3))),
        datetime(2024, 6, 1, 12, 0, 0, 5_000),  # naive: taken as UTC
    ],
)
def test_parse_ts_reads_back_what_ts_wrote(value: datetime) -> None:
    text = ts(value)
    parsed = parse_ts(text)
    assert parsed == utc(value)
    assert parsed.tzinfo is UTC
    assert ts(parsed) == text


def test_parse_ts_reads_the_stored_form() -> None:
    parsed = parse_ts("2024-01-02T03:04:05.678Z")
    assert parsed == datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert parsed.tzinfo is UTC
