"""What ingest needs of the registry: each venue's checks' settings and its devices.

`VenueConfig` and `TapConfig` are plain values the quality core reads (no database in sight);
`load_directory` builds them from the registry in three queries. Ingest reloads the directory
every `registry.refresh_s`, and takes keg changes and line cleanings newer than the last ones
it applied with `tap_events_since`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from registry.models import Beer, Device, KegChange, LineCleaning, Tap, Venue


@dataclass(frozen=True, slots=True)
class TapConfig:
    keg_l: float | None = None  # unset: quality.keg_l
    warm_max_c: float | None = None  # unset: the beer's, else quality.warm_max_c
    foam_c: float | None = None  # unset: warm limit + 3 °C
    serving_min_c: float | None = None  # unset: the beer's, else quality.serving_min_c


@dataclass(frozen=True, slots=True)
class VenueConfig:
    timezone: str = "UTC"
    # Per weekday (mon ... sun) "HH:MM-HH:MM" or "closed"; None: always open.
    hours: Mapping[str, str] | None = None
    line_cleaning_days: float | None = None  # unset: quality.line_cleaning_days
    taps: Mapping[str, TapConfig] = field(default_factory=dict)
    devices: frozenset[str] = frozenset()  # active (not revoked) device ids
    revoked: frozenset[str] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def refusal(self, venue: str, device: str) -> str | None:
        """Why a message from this device must not be taken, if it must not."""
        if device in self.devices:
            return None
        if device in self.revoked:
            return f"device {device!r} of venue {venue!r} was revoked"
        return f"device {device!r} is not registered for venue {venue!r}"


Directory = Mapping[str, VenueConfig]


def refusal(directory: Directory, venue: str, device: str) -> str | None:
    config = directory.get(venue)
    if config is None:
        return f"venue {venue!r} is not registered"
    return config.refusal(venue, device)


def load_directory(engine: Engine) -> dict[str, VenueConfig]:
    with engine.connect() as db:
        beers = {
            b.id: b
            for b in db.execute(
                select(Beer.id, Beer.serving_min_c, Beer.serving_max_c, Beer.foam_c)
            )
        }
        taps: dict[str, dict[str, TapConfig]] = {}
        for tap in db.execute(select(Tap.venue_id, Tap.id, Tap.beer_id, Tap.keg_l, Tap.warm_max_c)):
            beer = beers.get(tap.beer_id) if tap.beer_id is not None else None
            warm = tap.warm_max_c if tap.warm_max_c is not None else (beer and beer.serving_max_c)
            foam = beer.foam_c if beer is not None and tap.warm_max_c is None else None
            cold = beer.serving_min_c if beer is not None else None
            taps.setdefault(tap.venue_id, {})[tap.id] = TapConfig(tap.keg_l, warm, foam, cold)
        active: dict[str, set[str]] = {}
        revoked: dict[str, set[str]] = {}
        for device in db.execute(select(Device.venue_id, Device.id, Device.revoked_ms)):
            into = active if device.revoked_ms is None else revoked
            into.setdefault(device.venue_id, set()).add(device.id)
        return {
            v.id: VenueConfig(
                v.timezone,
                v.hours,
                v.line_cleaning_days,
                taps.get(v.id, {}),
                frozenset(active.get(v.id, ())),
                frozenset(revoked.get(v.id, ())),
            )
            for v in db.execute(
                select(Venue.id, Venue.timezone, Venue.hours, Venue.line_cleaning_days)
            )
        }


@dataclass(frozen=True, slots=True)
class TapEvent:
    id: int
    kind: str  # keg | cleaning
    venue: str
    tap: str
    at_ms: int
    keg_l: float = 0.0
    inferred: bool = False  # a keg change ingest concluded itself


def tap_events_since(engine: Engine, keg_id: int, cleaning_id: int) -> list[TapEvent]:
    """Keg changes with id > `keg_id` and line cleanings with id > `cleaning_id`, in time order."""
    with engine.connect() as db:
        kegs = db.execute(
            select(KegChange.id, KegChange.venue_id, KegChange.tap_id, KegChange.at_ms,
                   KegChange.keg_l, KegChange.inferred).where(KegChange.id > keg_id)
        )  # fmt: skip
        cleanings = db.execute(
            select(LineCleaning.id, LineCleaning.venue_id, LineCleaning.tap_id,
                   LineCleaning.at_ms).where(LineCleaning.id > cleaning_id)
        )  # fmt: skip
        events = [
            TapEvent(k.id, "keg", k.venue_id, k.tap_id, k.at_ms, k.keg_l, k.inferred) for k in kegs
        ]
        events += [TapEvent(c.id, "cleaning", c.venue_id, c.tap_id, c.at_ms) for c in cleanings]
    return sorted(events, key=lambda e: (e.at_ms, e.kind, e.id))
