"""What a venue-month's report is computed from, read from the registry and InfluxDB.

The only I/O of the figures: a handful of InfluxQL queries per venue-month (the month's pours,
its taps' temperatures averaged per 10 minutes by InfluxDB, the pours since the kegs on at its
start, the previous month's and last year's pours) and the registry's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.alert_models import Alert
from registry.models import Beer, KegChange, Tap, Venue
from registry.report_models import ReportRun
from reports import figures, metrics
from reports.figures import Alerted, BeerInfo, KegOn, MonthData, Peer, TapInfo
from reports.model import Report
from reports.tips import TipFacts
from timeseries.influx import InfluxQL
from timeseries.reads import PourRows, first_reading_ms, pours_between, temperature_buckets

# A keg on at the month's start went on at most this long before it; older kegs' pours are
# not read (a tap that stood unchanged for a quarter is not running dry from them).
KEG_LOOKBACK_MS = 92 * 86_400_000


def month_of(text: str) -> tuple[int, int]:
    """`2026-03` -> (2026, 3); a ValueError that says what is wrong otherwise."""
    try:
        year_text, month_text = text.split("-")
        year, month = int(year_text), int(month_text)
    except ValueError:
        raise ValueError(f"month {text[:20]!r} is not YYYY-MM") from None
    if len(year_text) != 4 or not 1 <= month <= 12:
        raise ValueError(f"month {text[:20]!r} is not YYYY-MM")
    if not 1970 <= year <= 9998:  # the months around it must be dates too
        raise ValueError(f"month {text[:20]!r}: there is no data before 1970 or after 9998")
    return year, month


def gather(
    db: Session, influx: InfluxQL, venue: Venue, year: int, month: int, now_ms: int
) -> MonthData:
    """A venue-month's inputs, without the region's peers (`peers_of` adds them)."""
    zone = ZoneInfo(venue.timezone)
    start, end = metrics.month_bounds(year, month, zone)
    taps = list(db.scalars(select(Tap).where(Tap.venue_id == venue.id).order_by(Tap.id)))
    beer_ids = {t.beer_id for t in taps}
    kegs = list(
        db.scalars(
            select(KegChange)
            .where(KegChange.venue_id == venue.id, KegChange.at_ms < end)
            .order_by(KegChange.at_ms, KegChange.id)
        )
    )
    beer_ids |= {k.beer_id for k in kegs}
    beers = {b.id: b for b in db.scalars(select(Beer).where(Beer.id.in_(beer_ids - {None})))}

    def name(beer_id: int | None) -> str | None:
        return beers[beer_id].name if beer_id in beers else None

    # The pours since the oldest keg still on at the month's start went on.
    since = start
    for tap in taps:
        before = [k.at_ms for k in kegs if k.tap_id == tap.id and k.at_ms < start]
        since = min(since, before[-1] if before else tap.created_ms)
    since = max(since, start - KEG_LOOKBACK_MS)

    previous = metrics.month_shifted(year, month, -1)
    last_year = metrics.month_shifted(year, month, -12)
    alerts = db.execute(
        select(Alert.check, Alert.opened_ms, Alert.acknowledged_ms).where(
            Alert.venue_id == venue.id, Alert.opened_ms >= start, Alert.opened_ms < end
        )
    ).all()
    return MonthData(
        venue=venue.id,
        venue_name=venue.name,
        region=venue.region,
        timezone=venue.timezone,
        hours=venue.hours,
        year=year,
        month=month,
        taps=[TapInfo(t.id, name(t.beer_id), t.keg_l, t.created_ms) for t in taps],
        beers={
            b.name: BeerInfo(b.name, b.serving_min_c, b.serving_max_c, b.foam_c, b.price_per_l)
            for b in beers.values()
        },
        kegs=[KegOn(k.tap_id, k.at_ms, name(k.beer_id), k.keg_l) for k in kegs],
        pours=pours_between(influx, venue.id, start, end),
        pours_before=pours_between(influx, venue.id, since, start)
        if since < start
        else PourRows.empty(),
        since_ms=since,
        temperatures=temperature_buckets(influx, venue.id, start, end, figures.BUCKET_MS),
        previous_month=pours_between(influx, venue.id, *metrics.month_bounds(*previous, zone)),
        last_year=pours_between(influx, venue.id, *metrics.month_bounds(*last_year, zone)),
        alerts=[Alerted(str(c), int(o), a) for c, o, a in alerts],
        first_reading_ms=first_reading_ms(influx, venue.id, end),
        generated_ms=now_ms,
    )


def region_venues(db: Session, venue: Venue) -> list[Venue]:
    """The other venues of its region that have taps (a venue without taps sells nothing to
    compare with)."""
    with_taps = select(Tap.venue_id).distinct()
    return list(
        db.scalars(
            select(Venue)
            .where(Venue.region == venue.region, Venue.id != venue.id, Venue.id.in_(with_taps))
            .order_by(Venue.id)
        )
    )


def peers_of(db: Session, venue: Venue, month: str, peer: Callable[[Venue], Peer]) -> list[Peer]:
    """The region's other venues' figures for the month: from their archived report where
    there is one, else computed now (`peer`)."""
    others = region_venues(db, venue)
    archived: dict[str, Any] = {
        run.venue_id: run.model
        for run in db.scalars(
            select(ReportRun).where(
                ReportRun.month == month,
                ReportRun.state == "done",
                ReportRun.venue_id.in_([v.id for v in others]),
            )
        )
        if run.model is not None
    }
    return [
        figures.peer_of(Report.model_validate(archived[v.id])) if v.id in archived else peer(v)
        for v in others
    ]


@dataclass
class MonthCache:
    """What the reports of one month share: each venue's figures, its own report's and its
    region's peer figures alike, so that a region of n venues costs n reads and n
    computations, not n squared."""

    figures: dict[str, TipFacts] = field(default_factory=dict)


def report(
    db: Session,
    influx: InfluxQL,
    venue: Venue,
    month: str,
    now_ms: int,
    cache: MonthCache | None = None,
) -> Report:
    """A venue-month's report, the region's comparison included."""
    year, number = month_of(month)
    shared = cache if cache is not None else MonthCache()

    def figures_of(v: Venue) -> TipFacts:
        if v.id not in shared.figures:
            shared.figures[v.id] = figures.figures_of(gather(db, influx, v, year, number, now_ms))
        return shared.figures[v.id]

    def peer(v: Venue) -> Peer:
        return figures.peer_of(figures_of(v).report)

    return figures.finished(figures_of(venue), peers_of(db, venue, month, peer))
