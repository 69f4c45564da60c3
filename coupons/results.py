"""A campaign's results: codes issued and redeemed per venue and day, and the uplift in the
campaign beer's pours, measured from InfluxDB with the beer each tap poured at each pour's time
(the keg changes in the registry)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from coupons import store
from coupons.uplift import Uplift, VenueRates, uplift
from registry.coupon_models import Campaign, Coupon
from registry.models import KegChange, Tap, Venue
from reports.figures import sold
from reports.metrics import tap_beer_at
from timeseries.influx import InfluxQL
from timeseries.reads import pours_between

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class VenueDay:
    venue: str
    day: str  # local date, YYYY-MM-DD
    redeemed: int


@dataclass(frozen=True, slots=True)
class Results:
    issued: dict[str, int]  # per venue
    redeemed: list[VenueDay]
    uplift: Uplift
    rates: list[VenueRates]


def redemptions(db: Session, campaign: Campaign) -> tuple[dict[str, int], list[VenueDay]]:
    rows = db.execute(select(Coupon.venue_id, Coupon.redeemed_ms, Venue.timezone)
                      .join(Venue, Venue.id == Coupon.venue_id)
                      .where(Coupon.campaign_id == campaign.id)).all()  # fmt: skip
    issued = Counter(venue for venue, _, _ in rows)
    days: Counter[tuple[str, str]] = Counter()
    for venue, redeemed_ms, timezone in rows:
        if redeemed_ms is not None:
            local = datetime.fromtimestamp(redeemed_ms / 1000, UTC).astimezone(ZoneInfo(timezone))
            days[(venue, local.date().isoformat())] += 1
    return dict(sorted(issued.items())), [VenueDay(v, d, n) for (v, d), n in sorted(days.items())]


def beer_litres(db: Session, influx: InfluxQL, venue: str, beer_id: int, start_ms: int,
                end_ms: int) -> float | None:  # fmt: skip
    """Litres of the beer sold at the venue in [start, end), by the keg on each tap at each
    pour's time; None when the venue sold none of it then."""
    pours = pours_between(influx, venue, start_ms, end_ms)
    keep = sold(pours)
    taps = {t.id: t.beer_id for t in db.scalars(select(Tap).where(Tap.venue_id == venue))}
    kegs = list(db.scalars(select(KegChange).where(KegChange.venue_id == venue,
                                                   KegChange.at_ms < end_ms)
                           .order_by(KegChange.at_ms, KegChange.id)))  # fmt: skip
    tap_names = np.asarray(pours.tap)
    litres, poured = 0.0, False
    for tap, now_beer in taps.items():
        index = np.flatnonzero((tap_names == tap) & keep)
        mine = [k for k in kegs if k.tap_id == tap]
        beers = tap_beer_at(pours.ts_ms[index], [k.at_ms for k in mine],
                            [str(k.beer_id) if k.beer_id else None for k in mine],
                            str(now_beer))  # fmt: skip
        chosen = np.array([b == str(beer_id) for b in beers], dtype=bool)
        poured |= bool(chosen.any())
        litres += float(pours.ml[index][chosen].sum()) / 1000
    return litres if poured else None


def results(db: Session, influx: InfluxQL, campaign: Campaign, now_ms: int,
            weeks_before: int = 4) -> Results:  # fmt: skip
    """Issued and redeemed per venue and day, and the uplift: the weeks before the campaign
    against its window (up to now), at the venues it reached against the organisation's
    other venues that poured its beer."""
    issued, redeemed = redemptions(db, campaign)
    reached = {r.venue for r in store.reach(db, campaign)}
    start = campaign.valid_from_ms
    end = min(campaign.valid_until_ms, now_ms)
    before_start = start - weeks_before * 7 * DAY_MS
    rates = []
    if end > start:
        venues = db.scalars(select(Venue.id).where(
            Venue.organisation_id == campaign.organisation_id).order_by(Venue.id))  # fmt: skip
        for venue in venues:
            before = beer_litres(db, influx, venue, campaign.beer_id, before_start, start)
            during = beer_litres(db, influx, venue, campaign.beer_id, start, end)
            if before is None or during is None:
                continue  # it did not pour the beer in both periods: not comparable
            rates.append(VenueRates(venue, venue in reached, before / (7 * weeks_before),
                                    during / ((end - start) / DAY_MS)))  # fmt: skip
    return Results(issued, redeemed, uplift(rates), rates)
