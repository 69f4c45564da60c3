"""Opening hours in the venue's own time zone, including hours that run past midnight."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from registry.hours import is_open

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WEEK = {"mon": "closed", "tue": "16:00-24:00", "wed": "16:00-02:00", "thu": "16:00-01:00"}


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ("2026-03-02T20:00:00+01:00", False),  # Monday: closed all day
        ("2026-03-03T15:59:00+01:00", False),  # Tuesday before opening
        ("2026-03-03T16:00:00+01:00", True),
        ("2026-03-03T23:59:00+01:00", True),
        ("2026-03-04T00:30:00+01:00", False),  # Tuesday ended at midnight
        ("2026-03-05T01:30:00+01:00", True),  # Wednesday night runs until 02:00 Thursday
        ("2026-03-05T02:00:00+01:00", False),
        ("2026-03-05T15:00:00+01:00", False),  # Thursday afternoon, before its own opening
        ("2026-03-06T00:59:00+01:00", True),  # Thursday night until 01:00
        ("2026-03-06T20:00:00+01:00", False),  # Friday is not listed: closed
        ("2026-07-01T17:00:00+02:00", True),  # summer time: 17:00 local is still 17:00
    ],
)
def test_open_in_local_time(when: str, open_: bool) -> None:
    assert is_open(WEEK, AMSTERDAM, at(when)) is open_
