"""Coupons on the real registry database, SQLite and PostgreSQL: a campaign around a festival
in Utrecht reaches the venues within its radius; its codes redeem once, at their venue, within
their window; 50 requests racing for one code get one success; every other answer says why;
guessing never redeems and is locked out."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from coupons import codes, store
from coupons.store import CampaignIn, FestivalIn, Lockout, Refused
from registry import changes
from registry.access import Invalid
from registry.coupon_models import Coupon
from registry.db import engine_for, migrate, transaction
from registry.inputs import BeerIn, VenueIn

NOW = 1_788_000_000_000  # 2026-08-29
DAY = 86_400_000
VENUES = {  # id: (latitude, longitude), real places
    "utrecht-dom": (52.0907, 5.1214), "utrecht-ledig-erf": (52.0797, 5.1278),
    "zeist": (52.0907, 5.2330), "amsterdam-dam": (52.3731, 4.8926),
}  # fmt: skip


@dataclass
class Campaign:
    engine: Engine
    id: int
    codes: dict[str, list[str]]  # venue -> its codes


@pytest.fixture
def campaign(registry_url: str) -> Iterator[Campaign]:
    yield from made_campaign(registry_url)


@pytest.fixture
def sqlite_campaign(tmp_path: Path) -> Iterator[Campaign]:
    """For the 10,000 guesses: what they show does not depend on the engine, and SQLite is
    three times quicker at them."""
    yield from made_campaign(f"sqlite:///{tmp_path / 'registry.sqlite'}")


def made_campaign(registry_url: str) -> Iterator[Campaign]:
    migrate(registry_url)
    engine = engine_for(registry_url, serialised=True)
    with transaction(engine) as db:
        org = changes.create_organisation(db, "Brouwerij Festival")
        beer = changes.create_beer(db, org.id, BeerIn(name="Herfstbok", style="bock"))
        for venue, (lat, lon) in VENUES.items():
            changes.create_venue(db, org.id, VenueIn(id=venue, name=venue.title(), latitude=lat,
                                                     longitude=lon, region="NL"))  # fmt: skip
        festival = store.create_festival(db, org.id, FestivalIn(
            name="Bokbierfestival Utrecht", latitude=52.0907, longitude=5.1214,
            starts_ms=NOW, ends_ms=NOW + 3 * DAY, beer_ids=[beer.id]), NOW)  # fmt: skip
        made = store.create_campaign(db, org.id, CampaignIn(
            festival_id=festival.id, beer_id=beer.id, radius_km=20, codes_per_venue=5,
            valid_from_ms=NOW - DAY, valid_until_ms=NOW + 14 * DAY,
            message={"en": "Taste our Herfstbok!", "nl": "Proef onze Herfstbok!"}), NOW)  # type: ignore[arg-type]  # fmt: skip
        assert store.launch(db, made, NOW) == 15  # three venues within 20 km, five codes each
        campaign_id = made.id
        issued: dict[str, list[str]] = {}
        for coupon in db.scalars(select(Coupon)):
            issued.setdefault(coupon.venue_id, []).append(coupon.code)
    yield Campaign(engine, campaign_id, issued)
    engine.dispose()


def redeem(c: Campaign, typed: str, venue: str, key: str = "k1", now: int = NOW,
           lockout: Lockout = store.DEFAULT_LOCKOUT) -> store.Redeemed | Refused:  # fmt: skip
    with transaction(c.engine) as db:
        try:
            return store.redeem(db, typed, venue, key, now, lockout)
        except Refused as refused:
            return refused


def test_the_campaign_reaches_the_venues_within_its_radius(campaign: Campaign) -> None:
    assert sorted(campaign.codes) == ["utrecht-dom", "utrecht-ledig-erf", "zeist"]
    assert all(len(v) == 5 for v in campaign.codes.values())
    with transaction(campaign.engine) as db:
        again = db.get_one(store.Campaign, campaign.id)
        with pytest.raises(Invalid, match="launched already"):
            store.launch(db, again, NOW)
        with pytest.raises(Invalid, match="window has ended"):
            store.launch(db, again, NOW + 15 * DAY)


def test_fifty_requests_racing_for_one_code_redeem_it_once(campaign: Campaign) -> None:
    code = campaign.codes["zeist"][0]
    barrier = threading.Barrier(50)
    results: list[store.Redeemed | Refused] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        outcome = redeem(campaign, codes.shown(code), "zeist", key=f"staff-{i}")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    kinds = Counter(r.kind if isinstance(r, Refused) else "redeemed" for r in results)
    assert kinds == {"redeemed": 1, "used": 49}
    used = next(r for r in results if isinstance(r, Refused))
    assert used.redeemed_at == "Zeist" and used.redeemed_ms == NOW
    with transaction(campaign.engine) as db:
        coupon = db.get_one(Coupon, code)
        assert coupon.redeemed_ms == NOW and coupon.redeemed_by is not None


def test_every_refusal_says_why(campaign: Campaign) -> None:
    mine, theirs = campaign.codes["utrecht-dom"][0], campaign.codes["zeist"][1]
    typo = mine[:3] + ("X" if mine[3] != "X" else "Y") + mine[4:]
    swapped = mine[:5] + mine[6] + mine[5] + mine[7:]
    unknown = codes.new_code()
    cases = [
        (typo, NOW, "mistyped", "mistyped or two are swapped"),
        (swapped if swapped != mine else typo, NOW, "mistyped", "mistyped or two are swapped"),
        ("hello", NOW, "mistyped", "a code has 14 letters and digits"),
        (unknown, NOW, "unknown", f"no coupon {codes.shown(unknown)}"),
        (theirs, NOW, "foreign", "issued to another venue"),
        (mine, NOW - 2 * DAY, "not_yet_valid", "not valid yet"),
        (mine, NOW + 15 * DAY, "expired", "has expired"),
    ]
    for typed, now, kind, says in cases:
        outcome = redeem(campaign, typed, "utrecht-dom", now=now)
        assert isinstance(outcome, Refused) and outcome.kind == kind, (typed, outcome)
        assert says in str(outcome)
    done = redeem(campaign, codes.shown(mine).lower(), "utrecht-dom")
    assert isinstance(done, store.Redeemed) and done.code == mine
    again = redeem(campaign, mine, "utrecht-dom", now=NOW + 60_000)
    assert isinstance(again, Refused) and again.kind == "used" and again.redeemed_ms == NOW


def well_formed_guess(rng: random.Random) -> str:
    """A random code that passes the check, as a guesser who knows the scheme would make."""
    while True:
        payload = "".join(rng.choice(codes.ALPHABET) for _ in range(codes.PAYLOAD))
        if (check := codes.check_symbol(payload)) in codes.ALPHABET:
            return payload + check


def test_ten_thousand_guesses_never_redeem_one(sqlite_campaign: Campaign) -> None:
    rng = random.Random(7)
    patient = Lockout(max_failures=20_000)
    outcomes: Counter[str] = Counter()
    with transaction(sqlite_campaign.engine) as db:  # one session: 10,000 attempts in seconds
        for _ in range(10_000):
            try:
                store.redeem(db, well_formed_guess(rng), "zeist", "guesser", NOW, patient)
                outcomes["redeemed"] += 1
            except Refused as refused:
                outcomes[refused.kind] += 1
    assert outcomes == {"unknown": 10_000}


def test_the_lockout_engages_and_says_when_to_retry(campaign: Campaign) -> None:
    rng = random.Random(8)
    default = Lockout()  # 10 failures in 15 minutes lock the key out for 15 minutes
    for i in range(default.max_failures):
        assert redeem(campaign, well_formed_guess(rng), "zeist", "k2", NOW + i).kind == "unknown"  # type: ignore[union-attr]
    locked = redeem(campaign, campaign.codes["zeist"][2], "zeist", "k2", NOW + 20)
    assert isinstance(locked, Refused) and locked.kind == "locked"
    assert locked.retry_after_s == pytest.approx(default.lockout_s - 0.011, abs=0.01)
    assert "try again in 900 s" in str(locked)
    # Another key at the bar, and the same key elsewhere, are not locked out.
    assert isinstance(redeem(campaign, campaign.codes["zeist"][2], "zeist", "k3"), store.Redeemed)
    other = redeem(campaign, well_formed_guess(rng), "utrecht-dom", "k2", NOW + 30)
    assert isinstance(other, Refused) and other.kind == "unknown"
    # Once the lockout is over, the key may try again.
    later = NOW + 9 + int(default.lockout_s * 1000) + 1
    assert isinstance(redeem(campaign, campaign.codes["zeist"][3], "zeist", "k2", later),
                      store.Redeemed)  # fmt: skip


def test_a_campaign_needs_a_reach_a_window_and_a_beer_of_the_festival(campaign: Campaign) -> None:
    base = {"festival_id": 1, "beer_id": 1, "valid_from_ms": NOW, "valid_until_ms": NOW + DAY,
            "message": {"en": "x", "nl": "x"}}  # fmt: skip
    for extra, says in (({}, "radius_km or region"),
                        ({"radius_km": 5, "region": "NL"}, "radius_km or region"),
                        ({"radius_km": 5, "valid_until_ms": NOW}, "must come after"),
                        ({"radius_km": 5, "message": {"en": "x"}}, "nl")):  # fmt: skip
        with pytest.raises(ValueError, match=says):
            CampaignIn.model_validate({**base, **extra})
