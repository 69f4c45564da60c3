"""A venue-month's figures as pure functions over plain arrays: no I/O, no database, no
InfluxDB. The report's query layer reads pours and temperatures and hands them here; tests
hand them the simulator's ground truth.

Times are ms since the epoch (UTC), as on the wire; volumes come in mL and go out in litres;
"local" means the venue's time zone, clock changes included (a March has an hour fewer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

QUARTER_MS = 900_000
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def month_bounds(year: int, month: int, zone: ZoneInfo) -> tuple[int, int]:
    """A month in the venue's time zone, as [start, end) in ms: from the 1st at midnight local
    to the next month's (a March in Amsterdam is an hour short, an October an hour long)."""
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def month_shifted(year: int, month: int, months: int) -> tuple[int, int]:
    """The month `months` after (before, if negative) the given one: (2026, 1, -1) is 2025-12."""
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


def beer_at(pour_ts: Ints, changes_ts: Sequence[int], changes_beer: Sequence[str],
            before_any: str) -> list[str]:  # fmt: skip
    """The beer each pour of one tap was: that of the last keg put on before it (`changes_*`
    in time order), `before_any` before the first."""
    beers = [before_any, *changes_beer]
    index = np.searchsorted(np.asarray(changes_ts, dtype=np.int64), pour_ts, side="right")
    return [beers[i] for i in index]


def tap_beer_at(pour_ts: Ints, changes_ts: Sequence[int], changes_beer: Sequence[str | None],
                now: str) -> list[str]:  # fmt: skip
    """What one tap poured at each time: the beer of the keg on then, a keg that names no beer
    having brought the tap's beer of `now`; before its first recorded keg, that keg's beer
    (what was on before is not recorded)."""
    filled = [beer or now for beer in changes_beer]
    return beer_at(pour_ts, changes_ts, filled, filled[0] if filled else now)


def litres_by(keys: Sequence[str], ml: Floats) -> dict[str, float]:
    """Litres poured per key (a tap, or the beer each pour was), keys in first-seen order."""
    totals: dict[str, float] = {}
    for key, amount in zip(keys, ml, strict=True):
        totals[key] = totals.get(key, 0.0) + float(amount)
    return {key: total / 1000 for key, total in totals.items()}


def local_weekday_minute(ts_ms: Ints, zone: ZoneInfo) -> tuple[Ints, Ints]:
    """Each time's local weekday (0 = Monday) and minute of the day. The zone's offset is
    looked up once per quarter hour of the span (every zone changes its offset on a quarter
    hour), not per time: a month costs some 3,000 lookups however many times there are."""
    if len(ts_ms) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first = int(ts_ms.min()) // QUARTER_MS
    slots = int(ts_ms.max()) // QUARTER_MS - first + 1
    offsets_min = np.array(
        [_offset_minutes(zone, (first + q) * QUARTER_MS) for q in range(slots)], dtype=np.int64
    )
    local_min = ts_ms // 60_000 + offsets_min[ts_ms // QUARTER_MS - first]
    weekday = (local_min // (24 * 60) + 3) % 7  # 1970-01-01 was a Thursday
    return weekday, local_min % (24 * 60)


def local_weekday_hour(ts_ms: Ints, zone: ZoneInfo) -> tuple[Ints, Ints]:
    """Each time's local weekday (0 = Monday) and hour."""
    weekday, minute = local_weekday_minute(ts_ms, zone)
    return weekday, minute // 60


def _offset_minutes(zone: ZoneInfo, ms: int) -> int:
    offset = datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).utcoffset() or timedelta()
    return int(offset.total_seconds() // 60)


def heat_map(ts_ms: Ints, ml: Floats, zone: ZoneInfo) -> Floats:
    """Litres poured per local weekday (rows, Monday first) and hour (columns)."""
    weekday, hour = local_weekday_hour(ts_ms, zone)
    grid = np.zeros((7, 24))
    np.add.at(grid, (weekday, hour), ml / 1000)
    return grid


def peak_hours(grid: Floats, n: int = 3) -> list[tuple[int, int, float]]:
    """The `n` busiest (weekday, hour) cells, busiest first; only cells where beer was poured."""
    order = np.argsort(-grid, axis=None, kind="stable")[:n]
    cells = [(int(i // 24), int(i % 24), float(grid.flat[i])) for i in order]
    return [cell for cell in cells if cell[2] > 0]


def ranked(volumes: Mapping[str, float]) -> list[tuple[str, float]]:
    """Best seller first; equal volumes by name, so the order never depends on the query."""
    return sorted(volumes.items(), key=lambda kv: (-kv[1], kv[0]))


def trend(now: float, before: float | None) -> float | None:
    """The change against a base period as a share (0.12 = 12% more); None without a base."""
    if before is None or before <= 0:
        return None
    return now / before - 1


def served_in_range(ml: Floats, temp_c: Floats, low_c: float, high_c: float) -> float | None:
    """The share of the poured volume whose temperature at pour time was within the beer's
    serving range; pours without a known temperature are left out. None: nothing to judge."""
    known = ~np.isnan(temp_c)
    total = float(ml[known].sum())
    if total <= 0:
        return None
    inside = known & (temp_c >= low_c) & (temp_c <= high_c)
    return float(ml[inside].sum()) / total


def kegs_per_tap(
    changes_ts: Mapping[str, Sequence[int]], start_ms: int, end_ms: int
) -> dict[str, int]:
    """How many kegs went on each tap within [start, end): the keg turnover."""
    return {tap: sum(start_ms <= ts < end_ms for ts in times) for tap, times in changes_ts.items()}


@dataclass(frozen=True, slots=True)
class Incidents:
    """A month's quality alerts for the report: how many of each check, and how long people
    took to acknowledge them (median, of those acknowledged) and how many nobody did."""

    by_check: dict[str, int]
    median_to_acknowledge_s: float | None
    never_acknowledged: int


def incidents(
    checks: Sequence[str], opened_ms: Sequence[int], acknowledged_ms: Sequence[int | None]
) -> Incidents:
    """From the alerts opened in the month (`alerts` rows: check, opened, acknowledged)."""
    by_check: dict[str, int] = {}
    for check in checks:
        by_check[check] = by_check.get(check, 0) + 1
    waits = [(ack - opened) / 1000 for opened, ack in zip(opened_ms, acknowledged_ms, strict=True)
             if ack is not None]  # fmt: skip
    return Incidents(
        by_check=dict(sorted(by_check.items(), key=lambda kv: (-kv[1], kv[0]))),
        median_to_acknowledge_s=float(np.median(waits)) if waits else None,
        never_acknowledged=sum(ack is None for ack in acknowledged_ms),
    )
