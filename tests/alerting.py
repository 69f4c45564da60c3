"""A venue set up for alerts, for tests: an owner who reads Dutch, an operator, beers on six
taps, a webhook endpoint; made through the operations the API and the CLI use."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from alerts import admin
from alerts.admin import WebhookIn
from registry import changes
from registry.alert_models import Alert, AlertTransition, Notification
from registry.db import transaction
from registry.inputs import BeerIn, TapIn, UserIn, VenueIn

T0 = 1_772_812_800_000  # 2026-03-06T16:00:00Z, 17:00 in Amsterdam


@dataclass(frozen=True)
class AlertVenue:
    venue: str
    owner_email: str
    operator_email: str
    webhook_id: int
    webhook_secret: str


def alert_venue(engine: Engine, venue: str, webhook_url: str = "http://127.0.0.1:9/hook",
                language: str = "nl", taps: int = 6) -> AlertVenue:  # fmt: skip
    with transaction(engine) as db:
        org = changes.create_organisation(db, f"Brewery of {venue}")
        owner = changes.create_user(db, org.id, UserIn(
            email=f"owner@{venue}.example", name="Owner", role="owner", language=language))  # type: ignore[arg-type]  # fmt: skip
        changes.create_user(db, org.id, UserIn(
            email=f"ops@{venue}.example", name="Operator", role="operator"))  # fmt: skip
        beer = changes.create_beer(db, org.id, BeerIn(
            name="IPA", style="IPA", serving_min_c=3, serving_max_c=7))  # fmt: skip
        v = changes.create_venue(db, org.id, VenueIn(
            id=venue, name=f"Café {venue}", latitude=52.09, longitude=5.12, region="Utrecht",
            owner_id=owner.id))  # fmt: skip
        for i in range(1, taps + 1):
            changes.create_tap(db, v, TapIn(id=f"tap-{i}", beer_id=beer.id, keg_l=50))
        hook = admin.add_webhook(db, venue, WebhookIn(url=webhook_url))  # type: ignore[arg-type]
        return AlertVenue(venue, owner.email, f"ops@{venue}.example", hook.id, hook.secret)


def count(db: Session, model: type, *where: object) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


__all__ = ["T0", "Alert", "AlertTransition", "AlertVenue", "Notification", "alert_venue", "count"]
