"""Registry rows for tests, made through the same operations the API and the CLI use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select

from registry import changes
from registry.db import engine_for, transaction
from registry.inputs import TapIn, VenueIn
from registry.models import Device, Organisation
from stack.settings import Settings

ORGANISATION = "Test brewery"


def register_venue(
    settings: Settings,
    venue_id: str,
    *,
    devices: Iterable[str] = ("edge-1",),
    taps: Mapping[str, Mapping[str, float]] | None = None,
    hours: dict[str, str] | None = None,
    line_cleaning_days: float | None = None,
) -> None:
    """A venue of the test organisation with these devices and taps (tap id -> its columns)."""
    engine = engine_for(settings.registry_url)
    try:
        with transaction(engine) as db:
            org = db.scalar(select(Organisation).where(Organisation.name == ORGANISATION))
            if org is None:
                org = changes.create_organisation(db, ORGANISATION)
            venue = changes.create_venue(db, org.id, VenueIn(
                id=venue_id, name=venue_id, latitude=52.09, longitude=5.12, region="Utrecht",
                timezone="Europe/Amsterdam", hours=hours, line_cleaning_days=line_cleaning_days,
            ))  # fmt: skip
            for tap_id, columns in (taps or {}).items():
                changes.create_tap(db, venue, TapIn(id=tap_id, **{"keg_l": 50.0, **columns}))
            for device_id in devices:
                changes.provision_device(db, venue, device_id)
    finally:
        engine.dispose()


def revoke(settings: Settings, venue_id: str, device_id: str) -> None:
    """Revoke a device as an operator would; a broker the registry manages hears of it when
    the change commits (no sync of the test's own)."""
    engine = engine_for(settings.registry_url)
    try:
        with transaction(engine) as db:
            device = db.get(Device, (venue_id, device_id))
            assert device is not None
            changes.revoke_device(db, device, broker_auth_dir=settings.registry.broker_auth_dir)
    finally:
        engine.dispose()
