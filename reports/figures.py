"""A venue-month's figures, from plain inputs to the report model. Pure: the query layer
(`reports.query`) reads the inputs from the registry and InfluxDB; tests build them from the
simulator's record.

What each figure means, precisely (the ground-truth test computes the same from the record):
- A pour is the beer of the keg on its tap at its time (`metrics.beer_at`).
- A leak is a flow the meter reported slower than `LEAK_ML_PER_S`: the agent reports an endless
  flow in pieces, and no guest's pour runs that slowly. Leaks are waste, not sales; every
  other figure counts sold pours only.
- A pour's temperature is its tap's mean reading over the `BUCKET_MS` it ended in (InfluxDB
  averages them; a month of raw readings is too slow to read: bench/report_reads.py). A pour
  without readings in its bucket is left out of the temperature figures.
- A foamy pour is warmer than the beer's foam limit or faster than `FOAM_ML_PER_S`; a quarter
  of it goes down the drain (`FOAM_WASTE_SHARE`, as the quality checks estimate it).
- Open time is the venue's opening hours (always open without hours), at minute resolution.
- A keg ran dry when the pours from it add up to `EMPTY_SHARE` of its size: the tap stood dry
  from the keg's last pour until the next keg went on (or the month ended), and that is a
  stock-out when any of it was open time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from registry.hours import open_in_week
from reports import metrics
from reports.model import (
    BeerVolume,
    Compliance,
    Incidents,
    Peak,
    Region,
    Report,
    StockOut,
    TapVolume,
    Trend,
    Waste,
)
from reports.tips import TipFacts, tips_for
from timeseries.reads import PourRows, TemperatureBuckets

BUCKET_MS = 600_000
LEAK_ML_PER_S = 1.0
FOAM_ML_PER_S = 200.0
FOAM_WASTE_SHARE = 0.25
FOAM_MARGIN_C = 3.0  # a beer without its own foam limit foams this far above its range
# Metered pours add up to a little less than a keg held (a last drip under the agent's
# smallest pour, rounding of meter ticks): 1% covers both.
EMPTY_SHARE = 0.99
REGION_MIN_OTHERS = 5
# A venue whose first reading came this long into the month opened during it (a backfill's
# first reading minutes after midnight does not make a month partial).
OPENED_AFTER_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class BeerInfo:
    name: str
    serving_min_c: float
    serving_max_c: float
    foam_c: float | None = None
    price_per_l: float | None = None

    @property
    def foams_above_c(self) -> float:
        return self.foam_c if self.foam_c is not None else self.serving_max_c + FOAM_MARGIN_C


@dataclass(frozen=True, slots=True)
class TapInfo:
    id: str
    beer: str | None  # the beer it pours now (registry)
    keg_l: float
    created_ms: int


@dataclass(frozen=True, slots=True)
class KegOn:
    """A keg put on a tap (recorded by staff, or inferred by ingest)."""

    tap: str
    at_ms: int
    beer: str | None  # None: the tap's beer
    keg_l: float


@dataclass(frozen=True, slots=True)
class Alerted:
    check: str
    opened_ms: int
    acknowledged_ms: int | None


@dataclass(frozen=True, slots=True)
class Peer:
    """Another venue of the region, for the comparison."""

    litres_per_tap: float
    share_in_range: float | None


@dataclass(slots=True)
class MonthData:
    """Everything a venue-month's report is computed from."""

    venue: str
    venue_name: str
    region: str
    timezone: str
    hours: Mapping[str, str] | None
    year: int
    month: int
    taps: list[TapInfo]
    beers: dict[str, BeerInfo]
    kegs: list[KegOn]  # every keg put on up to the month's end, time order
    pours: PourRows  # the month's
    pours_before: PourRows  # since the kegs on at the month's start went on ...
    since_ms: int  # ... from here
    temperatures: TemperatureBuckets
    previous_month: PourRows | None = None
    last_year: PourRows | None = None
    alerts: list[Alerted] = field(default_factory=list)
    peers: list[Peer] = field(default_factory=list)
    first_reading_ms: int | None = None
    generated_ms: int = 0

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bounds(self) -> tuple[int, int]:
        return metrics.month_bounds(self.year, self.month, self.zone)


def sold(pours: PourRows) -> np.ndarray:
    """Which pours were sold, not leaked."""
    dur_s = np.maximum(pours.dur_ms, 1) / 1000
    return pours.ml / dur_s >= LEAK_ML_PER_S


def sold_litres(pours: PourRows | None) -> float | None:
    """Litres sold over a period; None when nothing at all was poured then (no base)."""
    if pours is None or len(pours.ml) == 0:
        return None
    return float(pours.ml[sold(pours)].sum()) / 1000


class _OpenClock:
    """Whether the venue is open, for each minute of the month: the week's hours as a table of
    weekday x minute, looked up at each minute's local weekday and time."""

    def __init__(self, data: MonthData) -> None:
        self.start, self.end = data.bounds
        minutes = (self.end - self.start) // 60_000
        if data.hours is None:
            self.minute_open = np.ones(minutes, dtype=bool)
        else:
            week = np.array(
                [[open_in_week(data.hours, d, m) for m in range(24 * 60)] for d in range(7)]
            )
            at = self.start + np.arange(minutes, dtype=np.int64) * 60_000
            weekday, minute = metrics.local_weekday_minute(at, data.zone)
            self.minute_open = week[weekday, minute]
        self.cumulative = np.concatenate(([0], np.cumsum(self.minute_open)))

    def open_minutes(self, from_ms: int, to_ms: int) -> int:
        """Open minutes in [from, to), the month's part of it."""
        lo = int(np.clip((from_ms - self.start + 59_999) // 60_000, 0, len(self.minute_open)))
        hi = int(np.clip((to_ms - self.start + 59_999) // 60_000, 0, len(self.minute_open)))
        return int(self.cumulative[hi] - self.cumulative[lo]) if hi > lo else 0

    def is_open(self, ts_ms: np.ndarray) -> np.ndarray:
        index = (ts_ms - self.start) // 60_000
        inside = (index >= 0) & (index < len(self.minute_open))
        result = np.zeros(len(ts_ms), dtype=bool)
        result[inside] = self.minute_open[index[inside]]
        return result


def _beers_of(data: MonthData, pours: PourRows) -> list[str]:
    """The beer of each pour, by the keg on its tap at its time."""
    result = [""] * len(pours.tap)
    taps = np.asarray(pours.tap)
    for tap in set(pours.tap):
        index = np.flatnonzero(taps == tap)
        for i, beer in zip(index, beers_on(data, tap, pours.ts_ms[index]), strict=True):
            result[i] = beer
    return result


def beers_on(data: MonthData, tap: str, ts_ms: np.ndarray) -> list[str]:
    """What `tap` poured at each of these times (`metrics.tap_beer_at`)."""
    now = next((t.beer for t in data.taps if t.id == tap), None) or "?"
    kegs = [k for k in data.kegs if k.tap == tap]
    return metrics.tap_beer_at(ts_ms, [k.at_ms for k in kegs], [k.beer for k in kegs], now)


def _temperature_at(data: MonthData, pours: PourRows) -> np.ndarray:
    """Each pour's tap mean over its bucket; NaN where the tap sent no reading then."""
    result = np.full(len(pours.ts_ms), np.nan)
    taps = np.asarray(pours.tap)
    for tap, (ts, mean) in data.temperatures.by_tap.items():
        index = np.flatnonzero(taps == tap)
        if len(index) == 0 or len(ts) == 0:
            continue
        bucket = pours.ts_ms[index] // BUCKET_MS * BUCKET_MS
        at = np.searchsorted(ts, bucket)
        found = (at < len(ts)) & (ts[np.minimum(at, len(ts) - 1)] == bucket)
        result[index[found]] = mean[at[found]]
    return result


def _compliance(
    data: MonthData, clock: _OpenClock, pours: PourRows, beers: list[str], temp: np.ndarray
) -> list[Compliance]:
    taps = np.asarray(pours.tap)
    beer_array = np.asarray(beers)
    result = []
    for tap in data.taps:
        index = np.flatnonzero(taps == tap.id)
        low = np.array([_range(data, b)[0] for b in beer_array[index]])
        high = np.array([_range(data, b)[1] for b in beer_array[index]])
        t = temp[index]
        known = ~np.isnan(t)
        ml = pours.ml[index]
        total = float(ml[known].sum())
        inside = known & (t >= low) & (t <= high)
        volume_share = float(ml[inside].sum()) / total if total > 0 else None

        ts, mean = data.temperatures.by_tap.get(tap.id, (np.zeros(0, np.int64), np.zeros(0)))
        opened = clock.is_open(ts) & ~np.isnan(mean)
        bucket_beers = beers_on(data, tap.id, ts[opened])
        lows = np.array([_range(data, b)[0] for b in bucket_beers])
        highs = np.array([_range(data, b)[1] for b in bucket_beers])
        m = mean[opened]
        in_range = int(((m >= lows) & (m <= highs)).sum()) if len(m) else 0
        too_cold = int((m < lows).sum()) if len(m) else 0
        result.append(
            Compliance(
                tap=tap.id,
                volume_in_range=volume_share,
                open_time_in_range=in_range / len(m) if len(m) else None,
                open_time_too_cold=too_cold / len(m) if len(m) else None,
                open_hours_measured=len(m) * BUCKET_MS / 3_600_000,
            )
        )
    return result


def _range(data: MonthData, beer: str) -> tuple[float, float]:
    info = data.beers.get(beer)
    return (info.serving_min_c, info.serving_max_c) if info else (-np.inf, np.inf)


def _stock_outs(data: MonthData, clock: _OpenClock) -> list[StockOut]:
    start, end = data.bounds
    everything = _concat(data.pours_before, data.pours)
    taps = np.asarray(everything.tap)
    result = []
    for tap in data.taps:
        kegs = [k for k in data.kegs if k.tap == tap.id]
        index = np.flatnonzero(taps == tap.id)
        # Each keg from its putting on. The tap's first keg went on when the tap was
        # registered, or, for data older than that (a backfill), where the reading starts.
        starts = [(min(tap.created_ms, data.since_ms), tap.keg_l)]
        starts += [(k.at_ms, k.keg_l) for k in kegs]
        for n, (on_ms, keg_l) in enumerate(starts):
            off_ms = starts[n + 1][0] if n + 1 < len(starts) else None
            if off_ms is not None and off_ms < start:
                continue
            ts = everything.ts_ms[index]
            mine = index[(ts >= on_ms) & ((ts < off_ms) if off_ms is not None else True)]
            if len(mine) == 0 or everything.ml[mine].sum() < EMPTY_SHARE * keg_l * 1000:
                continue
            from_ms = int(everything.ts_ms[mine[-1]])  # the keg's last pour
            to_ms = off_ms
            minutes = clock.open_minutes(from_ms, to_ms if to_ms is not None else end)
            if minutes == 0 or (to_ms is not None and to_ms <= start) or from_ms >= end:
                continue
            local = datetime.fromtimestamp(from_ms / 1000, UTC).astimezone(data.zone)
            beer = beers_on(data, tap.id, np.array([from_ms - 1]))[0]
            result.append(
                StockOut(
                    tap=tap.id,
                    beer=beer,
                    from_ms=from_ms,
                    to_ms=to_ms if to_ms is not None and to_ms < end else None,
                    open_minutes=minutes,
                    weekday=local.weekday(),
                )
            )
    return sorted(result, key=lambda s: (s.from_ms, s.tap))


def _concat(a: PourRows, b: PourRows) -> PourRows:
    return PourRows(
        np.concatenate((a.ts_ms, b.ts_ms)),
        [*a.tap, *b.tap],
        np.concatenate((a.ml, b.ml)),
        np.concatenate((a.dur_ms, b.dur_ms)),
    )


def _select(pours: PourRows, keep: np.ndarray) -> PourRows:
    taps = np.asarray(pours.tap, dtype=object)
    return PourRows(pours.ts_ms[keep], list(taps[keep]), pours.ml[keep], pours.dur_ms[keep])


def peer_of(report: Report) -> Peer:
    """What the region's other venues are shown of this venue: its figures, not its name."""
    by_tap = {t.tap: t.litres for t in report.by_tap}
    return Peer(
        litres_per_tap=report.litres / report.taps if report.taps else 0.0,
        share_in_range=share_in_range(report.compliance, by_tap),
    )


def _region(region: str, own: Peer, peers: Sequence[Peer]) -> Region:
    others = len(peers)
    included = others >= REGION_MIN_OTHERS
    shares = [p.share_in_range for p in peers if p.share_in_range is not None]
    return Region(
        region=region,
        other_venues=others,
        included=included,
        litres_per_tap=own.litres_per_tap if included else None,
        median_litres_per_tap=float(np.median([p.litres_per_tap for p in peers]))
        if included
        else None,
        share_in_range=own.share_in_range if included else None,
        median_share_in_range=float(np.median(shares)) if included and shares else None,
    )


def share_in_range(compliance: Sequence[Compliance], by_tap: Mapping[str, float]) -> float | None:
    """The venue's share of poured volume served in range, over its taps (volume-weighted)."""
    weighted = [
        (c.volume_in_range, by_tap.get(c.tap, 0.0))
        for c in compliance
        if c.volume_in_range is not None
    ]
    total = sum(w for _, w in weighted)
    return sum(s * w for s, w in weighted) / total if total > 0 else None


def build(data: MonthData) -> Report:
    """A venue-month's report: its figures, the region's comparison (`data.peers`), tips."""
    return finished(figures_of(data), data.peers)


def finished(facts: TipFacts, peers: Sequence[Peer]) -> Report:
    """The report of `figures_of` with the region's comparison, and the tips drawn from all."""
    report = facts.report
    region = _region(report.region, peer_of(report), peers)
    report = report.model_copy(update={"region_comparison": region})
    return report.model_copy(update={"tips": tips_for(replace(facts, report=report))})


def figures_of(data: MonthData) -> TipFacts:
    """Every figure of the venue-month but those that need its region's other venues: the
    report without its region's comparison and tips (`finished` adds them), and the figures
    behind the tips. A venue's figures serve as its region's peer figures as they are."""
    start, end = data.bounds
    zone = data.zone
    clock = _OpenClock(data)
    is_sold = sold(data.pours)
    pours = _select(data.pours, is_sold)
    leaks = _select(data.pours, ~is_sold)
    beers = _beers_of(data, pours)
    temp = _temperature_at(data, pours)

    litres = float(pours.ml.sum()) / 1000
    by_beer = metrics.ranked(metrics.litres_by(beers, pours.ml))
    by_tap = metrics.litres_by(pours.tap, pours.ml)
    kegs_in_month = metrics.kegs_per_tap(
        {t.id: [k.at_ms for k in data.kegs if k.tap == t.id] for t in data.taps}, start, end
    )
    tap_beers: dict[str, list[str]] = {}
    for tap, beer in zip(pours.tap, beers, strict=True):
        if beer not in tap_beers.setdefault(tap, []):
            tap_beers[tap].append(beer)

    grid = metrics.heat_map(pours.ts_ms, pours.ml, zone)
    compliance = _compliance(data, clock, pours, beers, temp)

    foam_limit = np.array(
        [data.beers[b].foams_above_c if b in data.beers else np.inf for b in beers]
    )
    flow = pours.ml / (np.maximum(pours.dur_ms, 1) / 1000)
    foamy = (~np.isnan(temp) & (temp > foam_limit)) | (flow > FOAM_ML_PER_S)
    foam_by_tap = metrics.litres_by(
        list(np.asarray(pours.tap, dtype=object)[foamy]), pours.ml[foamy] * FOAM_WASTE_SHARE
    )
    leak_by_tap = metrics.litres_by(leaks.tap, leaks.ml)

    previous = sold_litres(data.previous_month)
    last_year = sold_litres(data.last_year)
    incidents = metrics.incidents(
        [a.check for a in data.alerts],
        [a.opened_ms for a in data.alerts],
        [a.acknowledged_ms for a in data.alerts],
    )
    price = {name: b.price_per_l for name, b in data.beers.items()}
    report = Report(
        venue=data.venue,
        venue_name=data.venue_name,
        region=data.region,
        timezone=data.timezone,
        month=f"{data.year:04d}-{data.month:02d}",
        start_ms=start,
        end_ms=end,
        generated_ms=data.generated_ms,
        taps=len(data.taps),
        has_data=len(data.pours.ml) > 0
        or any(len(ts) for ts, _ in data.temperatures.by_tap.values()),
        opened_ms=data.first_reading_ms
        if data.first_reading_ms is not None
        and start + OPENED_AFTER_MS <= data.first_reading_ms < end
        else None,
        litres=litres,
        pours=len(pours.ml),
        beers=[
            BeerVolume(
                beer=b,
                litres=v,
                share=v / litres if litres else 0.0,
                money=v * p if (p := price.get(b)) is not None else None,
            )
            for b, v in by_beer
        ],
        by_tap=[
            TapVolume(
                tap=t.id,
                beers=tap_beers.get(t.id, []),
                litres=by_tap.get(t.id, 0.0),
                kegs=kegs_in_month.get(t.id, 0),
            )
            for t in data.taps
        ],
        trend=Trend(
            litres=litres,
            previous_month_litres=previous,
            previous_month_change=metrics.trend(litres, previous),
            last_year_litres=last_year,
            last_year_change=metrics.trend(litres, last_year),
        ),
        heat_map=grid.round(6).tolist(),
        peaks=[Peak(weekday=d, hour=h, litres=v) for d, h, v in metrics.peak_hours(grid)],
        compliance=compliance,
        waste=Waste(
            foamy_pours=int(foamy.sum()),
            foam_litres=float(pours.ml[foamy].sum()) * FOAM_WASTE_SHARE / 1000,
            leak_litres=float(leaks.ml.sum()) / 1000,
            foam_by_tap=foam_by_tap,
            leak_by_tap=leak_by_tap,
        ),
        stock_outs=_stock_outs(data, clock),
        incidents=Incidents(
            total=len(data.alerts),
            by_check=incidents.by_check,
            median_to_acknowledge_s=incidents.median_to_acknowledge_s,
            never_acknowledged=incidents.never_acknowledged,
        ),
        region_comparison=_region(data.region, Peer(0.0, None), []),  # `finished` sets it
        tips=[],
    )
    weekday, _ = metrics.local_weekday_hour(pours.ts_ms, zone)
    beer_weekday: dict[str, list[float]] = {}
    for beer, day, ml in zip(beers, weekday, pours.ml, strict=True):
        beer_weekday.setdefault(beer, [0.0] * 7)[int(day)] += float(ml) / 1000
    return TipFacts(
        report=report,
        beer_weekday_litres=beer_weekday,
        open_hours=clock.open_minutes(start, end) / 60,
        price=price,
    )
