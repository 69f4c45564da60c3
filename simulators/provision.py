"""Registering a scenario's venues, taps, beers and devices (and its coupon campaigns), as a
field tester would first.

Ingest refuses messages from venues and devices the registry does not know, so a simulated
fleet is registered before it runs, under the organisation `Simulated fleet`. Running again is
harmless: what exists is updated to match the scenario, and every device gets a fresh MQTT
password (passwords are never stored, so they cannot be handed out twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from coupons import store as coupons
from coupons.store import CampaignIn, FestivalIn
from registry import access, changes
from registry.broker import sync_broker
from registry.coupon_models import Festival
from registry.db import transaction
from registry.models import Beer, Device, MqttCredential, Organisation, Tap, Venue
from simulators import scenario as sc
from simulators.fleet import DEVICE, venue_specs
from simulators.world import ms

ORGANISATION = "Simulated fleet"

Credentials = Mapping[str, tuple[str, str]]  # venue -> (MQTT username, password)


def provision(engine: Engine, scenario: sc.Scenario, auth_dir: Path | None = None) -> Credentials:
    """Register the scenario's fleet; each venue's device login. Reloads a managed broker."""
    credentials: dict[str, tuple[str, str]] = {}
    specs = venue_specs(scenario)
    with transaction(engine) as db, db.no_autoflush:
        org = db.scalar(select(Organisation).where(Organisation.name == ORGANISATION))
        if org is None:
            org = changes.create_organisation(db, ORGANISATION)
        beers = _beers(db, org.id, scenario.beers)
        # What exists already, in a few queries: one lookup per row would dominate.
        venues, taps, devices = _existing(db, [spec.id for spec in specs])
        for spec in specs:
            venue = venues.get(spec.id)
            if venue is None:
                venue = Venue(id=spec.id, organisation_id=org.id, created_ms=access.now_ms())
                db.add(venue)
            elif venue.organisation_id != org.id:
                raise ValueError(f"venue {spec.id!r} is registered to another organisation")
            venue.name = spec.id
            venue.latitude, venue.longitude = spec.lat, spec.lon
            venue.region, venue.timezone = spec.city, spec.timezone
            venue.hours = {day: getattr(spec.hours, day) for day in spec.hours.__struct_fields__}
            for tap_spec in sc.tap_specs(scenario, spec):
                tap = taps.get((spec.id, tap_spec.id))
                if tap is None:
                    tap = Tap(venue_id=spec.id, id=tap_spec.id, created_ms=access.now_ms())
                    db.add(tap)
                tap.beer_id, tap.keg_l = beers[tap_spec.beer], tap_spec.keg_l
            device = devices.get(spec.id)
            if device is None:
                device = Device(venue_id=spec.id, id=DEVICE, name="simulated edge agent",
                                created_ms=access.now_ms())  # fmt: skip
                db.add(device)
            device.revoked_ms = None
            credentials[spec.id] = changes.rotate_device_password(db, device, flush=False)
        db.flush()
        _campaigns(db, org.id, scenario, beers)
    sync_broker(engine, auth_dir)
    return credentials


def _campaigns(db: Session, organisation_id: int, scenario: sc.Scenario,
               beers: dict[str, int]) -> None:  # fmt: skip
    """Each coupon campaign of the scenario, registered and launched once: a festival of its
    name, place and time pouring its beer, the campaign over the venues within its radius."""
    end_ms = ms(scenario.start) + sc.seconds(scenario.duration) * 1000
    for event in scenario.events:
        if not isinstance(event, sc.CouponCampaign):
            continue
        at = ms(event.at)
        until = at + sc.seconds(event.duration) * 1000 if event.duration else end_ms
        known = db.scalar(select(Festival.id).where(
            Festival.organisation_id == organisation_id, Festival.name == event.name,
            Festival.starts_ms == at))  # fmt: skip
        if known is not None:
            continue
        festival = coupons.create_festival(db, organisation_id, FestivalIn(
            name=event.name, latitude=event.lat, longitude=event.lon, starts_ms=at,
            ends_ms=until, beer_ids=[beers[event.beer]]), at)  # fmt: skip
        campaign = coupons.create_campaign(db, organisation_id, CampaignIn(
            festival_id=festival.id, beer_id=beers[event.beer], radius_km=event.radius_km,
            codes_per_venue=event.codes_per_venue, valid_from_ms=at, valid_until_ms=until,
            message={"en": f"Taste {event.beer}!", "nl": f"Proef {event.beer}!"}), at)  # type: ignore[arg-type]  # fmt: skip
        coupons.launch(db, campaign, at)


_CHUNK = 500  # ids per IN (...): well under every database's parameter limit


def _existing(
    db: Session, venue_ids: list[str]
) -> tuple[dict[str, Venue], dict[tuple[str, str], Tap], dict[str, Device]]:
    """The venues, taps and simulated devices of these ids that exist, and (in the session's
    identity map, for `rotate_device_password`) their MQTT logins."""
    venues: dict[str, Venue] = {}
    taps: dict[tuple[str, str], Tap] = {}
    devices: dict[str, Device] = {}
    for i in range(0, len(venue_ids), _CHUNK):
        chunk = venue_ids[i : i + _CHUNK]
        venues |= {v.id: v for v in db.scalars(select(Venue).where(Venue.id.in_(chunk)))}
        taps |= {
            (t.venue_id, t.id): t for t in db.scalars(select(Tap).where(Tap.venue_id.in_(chunk)))
        }
        devices |= {d.venue_id: d for d in db.scalars(
            select(Device).where(Device.venue_id.in_(chunk), Device.id == DEVICE))}  # fmt: skip
        list(db.scalars(select(MqttCredential).where(MqttCredential.venue_id.in_(chunk))))
    return venues, taps, devices


def _beers(db: Session, organisation_id: int, specs: list[sc.Beer]) -> dict[str, int]:
    ids = {}
    for spec in specs:
        beer = db.scalar(
            select(Beer).where(Beer.organisation_id == organisation_id, Beer.name == spec.name)
        )
        if beer is None:
            beer = Beer(organisation_id=organisation_id, name=spec.name, created_ms=access.now_ms())
            db.add(beer)
        beer.style = spec.style
        beer.serving_min_c, beer.serving_max_c = spec.serving_min_c, spec.serving_max_c
        db.flush()
        ids[spec.name] = beer.id
    return ids
