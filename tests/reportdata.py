"""A venue-month's inputs made up in code, for the report's tests that need no server: a café
with three taps open every evening 16-24 in March 2026, a pour every few minutes, its taps'
temperatures per 10 minutes, and a keg change now and then."""

from __future__ import annotations

import random

import numpy as np

from reports import figures
from reports.figures import BeerInfo, KegOn, MonthData, TapInfo
from reports.metrics import month_bounds
from reports.model import Report
from timeseries.reads import PourRows, TemperatureBuckets

ZONE = "Europe/Amsterdam"
HOURS = {day: "16:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
BEERS = {
    "pils": BeerInfo("pils", 2.0, 6.0, price_per_l=7.5),
    "ipa": BeerInfo("ipa", 4.0, 8.0, price_per_l=11.0),
    "bock": BeerInfo("bock", 4.0, 9.0),
}


def month_data(
    *,
    taps: int = 3,
    warm_tap: str | None = None,
    pours_per_hour: float = 6.0,
    seed: int = 1,
    year: int = 2026,
    month: int = 3,
) -> MonthData:
    from zoneinfo import ZoneInfo

    rng = random.Random(seed)
    start, end = month_bounds(year, month, ZoneInfo(ZONE))
    tap_infos = [TapInfo(f"tap-{i + 1:02d}", list(BEERS)[i % 3], 50.0, start) for i in range(taps)]
    rows: list[tuple[int, str, float, int]] = []
    buckets: dict[str, tuple[list[int], list[float]]] = {t.id: ([], []) for t in tap_infos}
    for bucket in range(start, end, figures.BUCKET_MS):
        local_hour = ((bucket - start) // 3_600_000) % 24  # close enough for made-up data
        for tap in tap_infos:
            warm = tap.id == warm_tap and local_hour >= 20
            buckets[tap.id][0].append(bucket)
            buckets[tap.id][1].append(9.5 if warm else 4.5 + rng.random())
            if local_hour >= 16 and rng.random() < pours_per_hour / 6:
                at = bucket + rng.randrange(1, figures.BUCKET_MS)
                ml, dur_ms = round(rng.uniform(250, 500), 1), rng.randrange(4000, 9000)
                rows.append((at, tap.id, ml, dur_ms))
    rows.sort()
    pours = PourRows(
        np.array([r[0] for r in rows], dtype=np.int64),
        [r[1] for r in rows],
        np.array([r[2] for r in rows]),
        np.array([r[3] for r in rows], dtype=np.int64),
    )
    kegs = [KegOn("tap-01", start + 10 * 86_400_000 + 18 * 3_600_000, None, 50.0)] if taps else []
    return MonthData(
        venue="cafe-test", venue_name="Café Test", region="Utrecht", timezone=ZONE, hours=HOURS,
        year=year, month=month, taps=tap_infos, beers=dict(BEERS), kegs=kegs, pours=pours,
        pours_before=PourRows.empty(), since_ms=start,
        temperatures=TemperatureBuckets({tap: (np.array(ts, dtype=np.int64), np.array(c))
                                         for tap, (ts, c) in buckets.items()}),
        generated_ms=end + 86_400_000,
    )  # fmt: skip


def report(**kwargs: object) -> Report:
    return figures.build(month_data(**kwargs))  # type: ignore[arg-type]
