"""The report's figures, each against a computation of its own: per pour with `datetime`, or
by hand, across the clock change in March."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import metrics

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MARCH_2026 = (1_772_319_600_000, 1_774_994_400_000)  # local month bounds, ms (UTC)


def by_datetime(ts_ms: list[int], zone: ZoneInfo) -> list[tuple[int, int]]:
    local = [datetime.fromtimestamp(t / 1000, UTC).astimezone(zone) for t in ts_ms]
    return [(d.weekday(), d.hour) for d in local]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(MARCH_2026[0], MARCH_2026[1] - 1), min_size=1, max_size=200),
       st.sampled_from(["Europe/Amsterdam", "America/St_Johns", "Asia/Kolkata", "UTC",
                        "Australia/Lord_Howe"]))  # fmt: skip
def test_local_weekday_and_hour_agree_with_datetime(ts: list[int], zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    weekday, hour = metrics.local_weekday_hour(np.array(ts, dtype=np.int64), zone)
    assert list(zip(weekday.tolist(), hour.tolist(), strict=True)) == by_datetime(ts, zone)


def test_the_hour_the_clocks_skip_gets_no_beer_and_the_heat_map_keeps_every_litre() -> None:
    # 2026-03-29: 02:00 local does not exist; pours every 10 minutes that Sunday night.
    start = int(datetime(2026, 3, 29, 0, 0, tzinfo=AMSTERDAM).timestamp() * 1000)
    ts = np.arange(start, start + 6 * 3_600_000, 600_000, dtype=np.int64)
    ml = np.full(len(ts), 500.0)
    grid = metrics.heat_map(ts, ml, AMSTERDAM)
    assert grid.sum() == len(ts) * 0.5
    assert grid[6, 2] == 0  # Sunday 02:00 never happened
    assert grid[6, 3] == 3.0  # six pours in Sunday's 03:00 hour


def test_volumes_rank_and_trend() -> None:
    volumes = metrics.litres_by(["ipa", "pils", "ipa", "wit"], np.array([500, 250, 300, 250.0]))
    assert volumes == {"ipa": 0.8, "pils": 0.25, "wit": 0.25}
    assert metrics.ranked(volumes) == [("ipa", 0.8), ("pils", 0.25), ("wit", 0.25)]
    assert metrics.trend(110.0, 100.0) == pytest.approx(0.10)
    assert metrics.trend(5.0, None) is None and metrics.trend(5.0, 0.0) is None


def test_peak_hours_are_the_busiest_cells() -> None:
    grid = np.zeros((7, 24))
    grid[4, 20], grid[5, 21], grid[4, 19] = 30.0, 25.0, 10.0
    assert metrics.peak_hours(grid, 2) == [(4, 20, 30.0), (5, 21, 25.0)]
    assert metrics.peak_hours(np.zeros((7, 24))) == []


def test_served_in_range_weighs_by_volume_and_leaves_unknown_out() -> None:
    ml = np.array([500.0, 500.0, 250.0, 1000.0])
    temp = np.array([5.0, 8.0, np.nan, 6.0])
    assert metrics.served_in_range(ml, temp, 3.0, 6.0) == 1500 / 2000
    assert metrics.served_in_range(ml[2:3], temp[2:3], 3.0, 6.0) is None


def test_kegs_per_tap_counts_the_month_only() -> None:
    start, end = MARCH_2026
    changes = {"tap-1": [start - 1, start, end - 1, end], "tap-2": []}
    assert metrics.kegs_per_tap(changes, start, end) == {"tap-1": 2, "tap-2": 0}


def test_incidents_count_per_check_and_the_time_to_acknowledge() -> None:
    found = metrics.incidents(
        ["warm_beer", "leak", "warm_beer", "keg_low"],
        [0, 1_000, 10_000, 20_000],
        [60_000, None, 190_000, 20_000 + 600_000],
    )
    assert found.by_check == {"warm_beer": 2, "keg_low": 1, "leak": 1}
    assert found.median_to_acknowledge_s == 180.0  # of 60, 180 and 600 s
    assert found.never_acknowledged == 1
    assert metrics.incidents([], [], []).median_to_acknowledge_s is None
