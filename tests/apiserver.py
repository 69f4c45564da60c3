"""The API under a real uvicorn on a free port, and a registry of two tenants to call it with."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn

from alerts import admin
from alerts.admin import WebhookIn
from api.app import create_app
from coupons import store as coupon_store
from coupons.store import CampaignIn, FestivalIn
from registry import changes
from registry.alert_models import Alert
from registry.db import engine_for, transaction
from registry.inputs import UserIn
from registry.models import Beer, KegChange, LineCleaning, Tap, Venue
from stack.services import free_port
from stack.settings import ApiSettings, Settings


@contextmanager
def serving(settings: Settings) -> Iterator[httpx.Client]:
    settings = settings.model_copy(update={"api": ApiSettings(port=free_port())})
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings.for_api()),
            host="127.0.0.1",
            port=settings.api.port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the API did not start"
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.api.port}", timeout=30) as client:
        yield client
    server.should_exit = True
    thread.join(10)


# Operations that answer with a stream that does not end by itself: the fuzzers leave them
# out (tests/test_alerts_api.py reads the stream).
ENDLESS = {("GET", "/alerts/stream")}


@dataclass
class Tenant:
    """One venue's worth of registry rows and the keys that may or may not see them."""

    organisation_id: int
    venue: str
    tap: str
    device: str
    beer_id: int
    owner_id: int
    owner_key: str
    owner_key_id: str
    operator_key: str
    ids: dict[str, str] = field(default_factory=dict)  # path parameter -> value


T = 1_788_000_000_000  # a festival's and a campaign's time: 2026-08-29


def make_tenant(settings: Settings, org_name: str, venue: str, operator_key: str | None = None,
                organisation_id: int | None = None) -> Tenant:  # fmt: skip
    """A venue with a tap, a beer, a device, a keg change and a cleaning, and its owner.
    With `organisation_id`, a second venue of that organisation (another owner)."""
    engine = engine_for(settings.registry_url)
    with transaction(engine) as db:
        if organisation_id is None:
            organisation_id = changes.create_organisation(db, org_name).id
            operator = changes.create_user(
                db, organisation_id, UserIn(email=f"op@{venue}.test", name="Op", role="operator")
            )
            operator_key = changes.create_key(db, "ops", user_id=operator.id)[1]
        owner = changes.create_user(
            db, organisation_id, UserIn(email=f"owner@{venue}.test", name="Owner", role="owner")
        )
        key, owner_key = changes.create_key(db, "owner", user_id=owner.id)
        beer = Beer(organisation_id=organisation_id, name=f"{venue} pils", style="pils",
                    serving_min_c=2, serving_max_c=6, created_ms=0)  # fmt: skip
        db.add(beer)
        db.flush()
        db.add(Venue(id=venue, organisation_id=organisation_id, owner_id=owner.id, name=venue,
                     latitude=52.0, longitude=5.0, region="Utrecht", timezone="Europe/Amsterdam",
                     created_ms=0))  # fmt: skip
        db.flush()
        db.add(Tap(venue_id=venue, id="tap-01", beer_id=beer.id, keg_l=50, created_ms=0))
        db.flush()
        keg = KegChange(venue_id=venue, tap_id="tap-01", keg_l=50, beer_id=beer.id, at_ms=1)
        db.add(keg)
        db.add(LineCleaning(venue_id=venue, tap_id="tap-01", at_ms=1))
        venue_row = db.get(Venue, venue)
        assert venue_row is not None
        changes.provision_device(db, venue_row, "edge-1")
        db.flush()
        alert = Alert(venue_id=venue, subject="tap-01", check="warm_beer", state="open",
                      severity="warning", opened_ms=1, opened_seen_ms=1, last_ts=1, value=9.0,
                      detail=0.0)  # fmt: skip
        db.add(alert)
        hook = admin.add_webhook(db, venue, WebhookIn(url="http://127.0.0.1:9/hook"))  # type: ignore[arg-type]
        festival = coupon_store.create_festival(db, organisation_id, FestivalIn(
            name=f"{venue} fest", latitude=52.0, longitude=5.0, starts_ms=T, ends_ms=T + 1,
            beer_ids=[beer.id]), 0)  # fmt: skip
        campaign = coupon_store.create_campaign(db, organisation_id, CampaignIn(
            festival_id=festival.id, beer_id=beer.id, radius_km=10, valid_from_ms=T,
            valid_until_ms=T + 1, message={"en": "x", "nl": "x"}), 0)  # type: ignore[arg-type]  # fmt: skip
        db.flush()
        beer_id, owner_id, key_id, keg_id = beer.id, owner.id, key.id, keg.id
        alert_id, webhook_id, campaign_id = alert.id, hook.id, campaign.id
    engine.dispose()
    assert operator_key is not None
    tenant = Tenant(organisation_id, venue, "tap-01", "edge-1", beer_id, owner_id, owner_key,
                    key_id, operator_key)  # fmt: skip
    tenant.ids = {"venue": venue, "tap": "tap-01", "device": "edge-1", "beer_id": str(beer_id),
                  "user_id": str(owner_id), "key_id": key_id, "change_id": str(keg_id),
                  "alert_id": str(alert_id), "webhook_id": str(webhook_id),
                  "month": "2026-03", "campaign_id": str(campaign_id)}  # fmt: skip
    return tenant


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
