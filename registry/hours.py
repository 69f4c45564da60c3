"""Opening hours: is a venue open at a moment? Pure; a venue's, so the registry's, and used by
the quality checks, the API and the simulators.

Hours are given per weekday as `HH:MM-HH:MM` in the venue's own time zone, or `closed`; an end
at or before the start runs past midnight (`20:00-02:00`), and `24:00` is midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$|^closed$"


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def open_at(hours: str, minute_of_day: int) -> bool:
    """Whether one day's `hours` include this minute of that day."""
    if hours == "closed":
        return False
    start, end = (_minutes(part) for part in hours.split("-"))
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


def is_open(week: Mapping[str, str], tz: ZoneInfo, ts_ms: int) -> bool:
    """Whether a venue with these weekly hours is open at `ts_ms` (UTC milliseconds)."""
    local = datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(tz)
    return open_in_week(week, local.weekday(), local.hour * 60 + local.minute)


def open_in_week(week: Mapping[str, str], weekday: int, minute: int) -> bool:
    """Whether a venue with these weekly hours is open on local `weekday` (0 = Monday) at
    `minute` of that day."""
    today = week.get(WEEKDAYS[weekday], "closed")
    if open_at(today, minute) and not _after_midnight_part(today, minute):
        return True
    # Last night's hours may run past midnight into this morning.
    yesterday = week.get(WEEKDAYS[(weekday - 1) % 7], "closed")
    return _after_midnight_part(yesterday, minute)


def _after_midnight_part(hours: str, minute: int) -> bool:
    if hours == "closed":
        return False
    start, end = (_minutes(part) for part in hours.split("-"))
    return end <= start and minute < end
