"""Did the campaign sell more? A festival scenario: twelve venues around Utrecht pour Herfstbok
for five weeks; a bock festival boosts every one of them in the last two, and tasting coupons
reach the six within 12 km. The simulator marks every pour a redeemed coupon brought, so the
true effect is known. Its pours, backfilled into the real InfluxDB, and the registry give the
difference in differences: its interval holds the true effect and not zero; the same scenario
without coupons (the very same other pours) gives an interval that holds zero."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from coupons import store
from coupons.results import Results, redemptions, results
from coupons.store import CampaignIn, FestivalIn
from coupons.uplift import VenueRates, uplift
from registry.coupon_models import Campaign
from registry.db import engine_for, migrate, transaction
from registry.models import Beer
from simulators import scenario as sc
from simulators.fleet import Fleet
from simulators.provision import provision
from simulators.staff import Staff
from simulators.world import ms
from stack.settings import MqttSettings
from tests.conftest import Influx
from timeseries import lineproto
from timeseries.influx import InfluxQL, V1Writer, ensure_database
from timeseries.settings import InfluxSettings

VENUES = {  # within 12 km of the Dom, then 12-31 km off
    "dom": (52.0907, 5.1214), "ledig-erf": (52.0797, 5.1278), "zeist": (52.0907, 5.2330),
    "nieuwegein": (52.0290, 5.0918), "maarssen": (52.1350, 5.0410), "bunnik": (52.0670, 5.1990),
    "amersfoort": (52.1561, 5.3878), "hilversum": (52.2292, 5.1669),
    "woerden": (52.0850, 4.8830), "veenendaal": (52.0286, 5.5589),
    "culemborg": (51.9550, 5.2270), "breukelen": (52.1740, 5.0010),
}  # fmt: skip
CAMPAIGN_AT = "2026-09-28T00:00:00+02:00"
ZONE = ZoneInfo("Europe/Amsterdam")


def scenario_text(uplift: float, venues: dict[str, tuple[float, float]] = VENUES,
                  start: str = "2026-09-07T00:00:00+02:00", days: int = 35) -> str:  # fmt: skip
    listed = "\n".join(
        f"  - {{id: {v}, lat: {lat}, lon: {lon}, pours_per_tap_hour: 6,\n"
        f"     taps: [{{id: tap-01, beer: Herfstbok, keg_l: 200}}]}}"
        for v, (lat, lon) in venues.items()
    )
    return f"""\
name: bokbier-{uplift}
start: {start}
duration: {days}d
seed: 11
sample_interval: 1h
beers: [{{name: Herfstbok, style: bock, serving_min_c: 5, serving_max_c: 9}}]
venues:
{listed}
events:
  - {{kind: festival, name: Bokbierfestival, lat: 52.0907, lon: 5.1214, radius_km: 40,
     boost: 1.5, beers: [Herfstbok], at: {CAMPAIGN_AT}, duration: 14d}}
  - {{kind: coupon_campaign, name: Proef de bok, beer: Herfstbok, lat: 52.0907, lon: 5.1214,
     radius_km: 12, uplift: {uplift}, at: {CAMPAIGN_AT}, duration: 14d}}
"""


def played(tmp_path: Path, influx: Influx, uplift_share: float) -> tuple[float, Results]:
    """The scenario played, its pours in InfluxDB and its venues in a registry; the true
    effect (coupon litres a day per targeted venue) and the measured results."""
    path = tmp_path / f"scenario-{uplift_share}.yaml"
    path.write_text(scenario_text(uplift_share))
    scenario = sc.load(path)
    fleet = Fleet(scenario, MqttSettings(port=9), tmp_path / f"spool-{uplift_share}")
    fleet.fast_forward()
    fleet.close()
    settings = InfluxSettings(url=influx.url, database=f"uplift_{uuid.uuid4().hex[:8]}")
    ensure_database(settings)
    writer = V1Writer(settings)
    pours = fleet.truth.pours
    for venue in VENUES:
        mine = [p for v, p in pours if v == venue]
        writer.write(lineproto.body(lineproto.pours(venue, 0, mine)))
    writer.close()

    start = ms(sc.load(path).events[1].at)
    end = start + 14 * 86_400_000
    coupon_l = sum(float(e.detail["ml"]) for e in fleet.truth.events
                   if e.kind == "pour" and e.detail.get("coupon") == "true") / 1000  # fmt: skip
    true_effect = coupon_l / 14 / 6

    url = f"sqlite:///{tmp_path / f'registry-{uplift_share}.sqlite'}"
    migrate(url)
    engine = engine_for(url)
    provision(engine, scenario)
    client = InfluxQL(settings)
    try:
        with transaction(engine) as db:
            beer = db.scalars(select(Beer)).one()  # the scenario's one beer
            org, beer_id = beer.organisation_id, beer.id
            festival = store.create_festival(db, org, FestivalIn(
                name="Bokbierfestival", latitude=52.0907, longitude=5.1214, starts_ms=start,
                ends_ms=end, beer_ids=[beer_id]), start)  # fmt: skip
            campaign = store.create_campaign(db, org, CampaignIn(
                festival_id=festival.id, beer_id=beer_id, radius_km=12, codes_per_venue=20,
                valid_from_ms=start, valid_until_ms=end,
                message={"en": "Taste the bock", "nl": "Proef de bok"}), start)  # type: ignore[arg-type]  # fmt: skip
            store.launch(db, campaign, start)
            measured = results(db, client, campaign, now_ms=end + 86_400_000, weeks_before=3)
    finally:
        client.close()
        engine.dispose()
    return true_effect, measured


def test_a_campaign_that_works_and_one_that_does_not(tmp_path: Path, influx: Influx) -> None:
    true_effect, worked = played(tmp_path, influx, 0.6)
    u = worked.uplift
    assert u.low is not None and u.high is not None and u.litres_per_day is not None
    assert (u.targeted, u.comparable) == (6, 6)
    assert sorted(r.venue for r in worked.rates if r.targeted) == sorted(list(VENUES)[:6])
    assert true_effect > 1.0  # litres a day per targeted venue
    assert u.low < true_effect < u.high, (u, true_effect)
    assert u.low > 0
    assert worked.issued == {v: 20 for v in list(VENUES)[:6]}

    no_effect, not_worked = played(tmp_path, influx, 0.0)
    assert no_effect == 0.0
    v = not_worked.uplift
    assert v.low is not None and v.high is not None and v.litres_per_day is not None
    assert v.low < 0 < v.high, v
    # The same draws but the coupons' own: the estimates differ by about the effect (kegs
    # emptied by coupon pours run dry a little sooner, which moves the others a little).
    assert u.litres_per_day - v.litres_per_day == pytest.approx(true_effect, rel=0.05)


def test_the_estimate_is_the_difference_of_the_mean_changes() -> None:
    rates = [VenueRates(f"t{i}", True, 10.0, 14.0 + i) for i in range(3)] + [
        VenueRates(f"c{i}", False, 10.0, 11.0 + i) for i in range(3)]  # fmt: skip
    u = uplift(rates)
    assert u.litres_per_day == pytest.approx(3.0)  # (4+5+6)/3 - (1+2+3)/3
    assert u.share == pytest.approx(0.3)
    assert u.low is not None and u.high is not None and u.low <= 3.0 <= u.high
    assert uplift(rates, seed=1).litres_per_day == u.litres_per_day


def test_without_comparable_venues_there_is_no_estimate_and_it_says_why() -> None:
    rates = [VenueRates(f"t{i}", True, 10.0, 14.0) for i in range(4)] + [
        VenueRates("c0", False, 10.0, 11.0)]  # fmt: skip
    u = uplift(rates)
    assert u.litres_per_day is None and u.low is None
    assert u.reason is not None and "not enough comparable venues" in u.reason
    assert "1 untargeted" in u.reason


def test_simulated_staff_redeem_a_code_at_each_pour_a_coupon_brought(tmp_path: Path) -> None:
    """`tapsense simulate` registers and launches the scenario's campaign; the staff redeem a
    code for every coupon pour, so the campaign's results count what happened, per day."""
    near = dict(list(VENUES.items())[:3])
    far = dict(list(VENUES.items())[6:8])
    path = tmp_path / "short.yaml"
    path.write_text(scenario_text(0.5, {**near, **far}, "2026-09-27T00:00:00+02:00", 3))
    scenario = sc.load(path)
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    migrate(url)
    engine = engine_for(url)
    provision(engine, scenario)
    provision(engine, scenario)  # again: nothing launched twice
    fleet = Fleet(scenario, MqttSettings(port=9), tmp_path / "spool", staff=Staff(engine))
    fleet.fast_forward()
    fleet.close()
    coupon_pours: Counter[tuple[str, str]] = Counter()
    for e in fleet.truth.events:
        if e.kind == "pour" and e.detail.get("coupon") == "true":
            day = datetime.fromtimestamp(e.ts_ms / 1000, UTC).astimezone(ZONE).date()
            coupon_pours[(e.venue, day.isoformat())] += 1
    assert sum(coupon_pours.values()) > 30
    with transaction(engine) as db:
        [campaign] = db.scalars(select(Campaign)).all()
        issued, redeemed = redemptions(db, campaign)
    engine.dispose()
    assert issued == dict.fromkeys(sorted(near), 500)
    assert {(d.venue, d.day): d.redeemed for d in redeemed} == dict(coupon_pours)
