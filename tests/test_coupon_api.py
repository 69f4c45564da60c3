"""Coupons through the HTTP API on a real uvicorn and registry (SQLite and PostgreSQL): an
operator makes a festival campaign, previews the venues it reaches with their distances and
launches it; the owner sees the venue's codes; 50 requests at once redeem one code once; every
refusal says why; a guessing key is locked out and told when to retry."""

from __future__ import annotations

import io
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from coupons import codes
from registry import changes
from registry.db import engine_for, transaction
from registry.inputs import VenueIn
from stack.settings import Settings
from tests.apiserver import Tenant, bearer, make_tenant, serving
from tests.conftest import Broker, Influx, make_settings
from timeseries.influx import ensure_database

UTRECHT = (52.0907, 5.1214)


@dataclass
class World:
    client: httpx.Client
    tenant: Tenant
    operator: dict[str, str]
    owner: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          broker: Broker, influx: Influx) -> Iterator[World]:  # fmt: skip
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres").new_database()
    settings: Settings = make_settings(tmp_path_factory.mktemp("coupons"), broker, influx, url)
    ensure_database(settings.influx)  # empty: no pours yet
    tenant = make_tenant(settings, "Brouwerij", "venue-utrecht")  # at 52.0, 5.0
    engine = engine_for(settings.registry_url)
    with transaction(engine) as db:
        for venue, lat, lon in (("cafe-dom", 52.0907, 5.1214), ("cafe-zeist", 52.0907, 5.2330),
                                ("cafe-dam", 52.3731, 4.8926)):  # fmt: skip
            body = VenueIn(id=venue, name=venue.title(), latitude=lat, longitude=lon, region="NL")
            changes.create_venue(db, tenant.organisation_id, body)
    engine.dispose()
    with serving(settings) as client:
        yield World(client, tenant, bearer(tenant.operator_key), bearer(tenant.owner_key))


def launched(world: World, radius_km: float) -> tuple[int, dict]:
    client, operator = world.client, world.operator
    festival = client.post("/festivals", headers=operator, json={
        "name": "Bokbierfestival", "latitude": UTRECHT[0], "longitude": UTRECHT[1],
        "starts_ms": 1_788_000_000_000, "ends_ms": 1_788_259_200_000,
        "beer_ids": [world.tenant.beer_id]})  # fmt: skip
    assert festival.status_code == 201, festival.text
    campaign = client.post("/campaigns", headers=operator, json={
        "festival_id": festival.json()["id"], "beer_id": world.tenant.beer_id,
        "radius_km": radius_km, "codes_per_venue": 3, "valid_from_ms": 1_700_000_000_000,
        "valid_until_ms": 4_000_000_000_000,
        "message": {"en": "Taste our bock", "nl": "Proef onze bok"}})  # fmt: skip
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    preview = client.get(f"/campaigns/{campaign_id}/preview", headers=operator).json()
    launch = client.post(f"/campaigns/{campaign_id}/launch", headers=operator)
    assert launch.status_code == 200 and launch.json()["issued"] == preview["codes"]
    again = client.post(f"/campaigns/{campaign_id}/launch", headers=operator)
    assert again.status_code == 422 and "launched already" in again.text
    return campaign_id, preview


def test_preview_launch_and_a_venues_codes(world: World) -> None:
    campaign_id, preview = launched(world, radius_km=20)
    # venue-utrecht (52.0, 5.0) is 13 km off; Amsterdam's Dam 35 km: outside 20 km
    assert [(v["venue"], round(v["distance_km"])) for v in preview["venues"]] == [
        ("cafe-dom", 0), ("cafe-zeist", 8), ("venue-utrecht", 13)]  # fmt: skip
    assert preview["codes"] == 9
    mine = world.client.get("/venues/venue-utrecht/coupons", headers=world.owner,
                            params={"campaign_id": campaign_id})  # fmt: skip
    assert mine.status_code == 200 and len(mine.json()) == 3
    assert all(len(c["code"]) == 16 and c["code"].count("-") == 2 for c in mine.json())
    others = world.client.get("/venues/cafe-dom/coupons", headers=world.owner)
    assert others.status_code == 404  # not the owner's venue
    owner_try = world.client.post("/campaigns", headers=world.owner, json={})
    assert owner_try.status_code == 403


def test_fifty_requests_at_once_redeem_one_code_once(world: World) -> None:
    campaign_id, _ = launched(world, radius_km=20)
    [code, *_] = [c["code"] for c in world.client.get(
        "/venues/venue-utrecht/coupons", headers=world.owner,
        params={"campaign_id": campaign_id}).json()]  # fmt: skip
    barrier = threading.Barrier(50)
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    base = str(world.client.base_url)

    def attempt() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            barrier.wait()
            answer = client.post("/venues/venue-utrecht/redemptions", headers=world.owner,
                                 json={"code": code.lower()})  # fmt: skip
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert Counter(a.status_code for a in answers) == {200: 1, 409: 49}
    used = next(a.json() for a in answers if a.status_code == 409)
    assert used["reason"] == "used" and used["redeemed_at"] == "venue-utrecht"
    done = next(a.json() for a in answers if a.status_code == 200)
    assert used["redeemed_ms"] == done["redeemed_ms"] and done["code"] == code


def test_refusals_say_why_and_guessing_is_locked_out(world: World) -> None:
    campaign_id, _ = launched(world, radius_km=20)
    client = world.client
    # a key of its own, for the bar's tablet: the lockout is per key and venue
    tablet = client.post(f"/users/{world.tenant.owner_id}/keys", headers=world.operator,
                         json={"name": "bar tablet"})  # fmt: skip
    owner = bearer(tablet.json()["token"])
    mine = [c["code"] for c in client.get("/venues/venue-utrecht/coupons", headers=owner,
                                          params={"campaign_id": campaign_id}).json()]  # fmt: skip
    plain = mine[1].replace("-", "")
    typo = plain[:4] + ("Z" if plain[4] != "Z" else "Y") + plain[5:]

    def redeem(code: str) -> httpx.Response:
        return client.post("/venues/venue-utrecht/redemptions", headers=owner,
                           json={"code": code})  # fmt: skip

    for code, status, reason in ((typo, 422, "mistyped"), ("", 422, None),
                                 ("x" * 101, 422, None)):  # fmt: skip
        answer = redeem(code)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        if reason:
            assert answer.json()["reason"] == reason
    failures = 1  # the typo
    while failures < 10:
        guess = codes.new_code()
        answer = redeem(guess)
        assert answer.status_code == 404 and answer.json()["reason"] == "unknown"
        failures += 1
    locked = redeem(mine[1])
    assert locked.status_code == 429 and locked.json()["reason"] == "locked"
    assert 890 <= int(locked.headers["retry-after"]) <= 900
    # the owner's other key is not locked out
    assert client.post("/venues/venue-utrecht/redemptions", headers=world.owner,
                       json={"code": mine[1]}).status_code == 200  # fmt: skip


def test_the_printed_sheet_holds_every_unused_code_as_a_qr_code(
    world: World, tmp_path: Path
) -> None:
    campaign_id, _ = launched(world, radius_km=20)
    client, owner = world.client, world.owner
    mine = [c["code"] for c in client.get("/venues/venue-utrecht/coupons", headers=owner,
                                          params={"campaign_id": campaign_id}).json()]  # fmt: skip
    assert client.post("/venues/venue-utrecht/redemptions", headers=owner,
                       json={"code": mine[0]}).status_code == 200  # fmt: skip
    answer = client.get("/venues/venue-utrecht/coupons/sheet", headers=owner,
                        params={"campaign_id": campaign_id, "language": "nl"})  # fmt: skip
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    (tmp_path / "sheet.pdf").write_bytes(answer.content)
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(answer.content)).pages)
    assert "Proef onze bok" in text and "Eén keer geldig tot" in text
    subprocess.run(["pdftoppm", "-r", "100", "-png", "sheet.pdf", "page"], cwd=tmp_path,
                   check=True)  # fmt: skip
    decoded = set()
    for png in sorted(tmp_path.glob("page-*.png")):
        with Image.open(png) as image:
            decoded |= {found.text for found in zxingcpp.read_barcodes(image)}
    assert decoded == set(mine[1:])  # the used one is not printed again
    assert all(code in text for code in mine[1:])


def test_results_count_per_venue_and_day_and_say_why_there_is_no_uplift_yet(world: World) -> None:
    campaign_id, _ = launched(world, radius_km=20)
    client = world.client
    listed = client.get("/venues/cafe-zeist/coupons", headers=world.operator,
                        params={"campaign_id": campaign_id})  # fmt: skip
    code = listed.json()[0]["code"]
    assert client.post("/venues/cafe-zeist/redemptions", headers=world.operator,
                       json={"code": code}).status_code == 200  # fmt: skip
    found = client.get(f"/campaigns/{campaign_id}/results", headers=world.operator)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["issued"] == {"cafe-dom": 3, "cafe-zeist": 3, "venue-utrecht": 3}
    [day] = body["redeemed"]
    assert (day["venue"], day["redeemed"]) == ("cafe-zeist", 1)
    assert body["uplift"]["litres_per_day"] is None
    assert "not enough comparable venues" in body["uplift"]["reason"]
    assert client.get(f"/campaigns/{campaign_id}/results", headers=world.owner).status_code == 403
