"""Which venues a campaign reaches: those within a radius of its festival (great-circle
distance on a sphere of the Earth's mean radius), or those of a region. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG): within 0.5% of the ellipsoid's distances


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula (exact on a sphere, stable for short
    distances)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class Place:
    venue: str
    name: str
    latitude: float
    longitude: float
    region: str


@dataclass(frozen=True, slots=True)
class Reached:
    venue: str
    name: str
    distance_km: float


def reached(
    places: Iterable[Place],
    lat: float,
    lon: float,
    *,
    radius_km: float | None = None,
    region: str | None = None,
) -> list[Reached]:
    """The venues a campaign reaches, nearest first: within `radius_km` of (lat, lon), or in
    `region` (exactly one of the two), each with its distance from the festival."""
    if (radius_km is None) == (region is None):
        raise ValueError("a campaign reaches venues within a radius or in a region, not both")
    result = []
    for p in places:
        km = distance_km(lat, lon, p.latitude, p.longitude)
        if (radius_km is not None and km <= radius_km) or (
            region is not None and p.region == region
        ):
            result.append(Reached(p.venue, p.name, km))
    return sorted(result, key=lambda r: (r.distance_km, r.venue))
