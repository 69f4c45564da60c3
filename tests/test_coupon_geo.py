"""Which venues a festival campaign reaches, on real Dutch coordinates, against distances
computed here another way (the spherical law of cosines) and known road-atlas figures."""

from __future__ import annotations

import math

import pytest

from coupons.geo import Place, distance_km, reached

UTRECHT = (52.0907, 5.1214)  # the Dom
PLACES = [
    Place("amsterdam-dam", "Café de Dam", 52.3731, 4.8926, "Noord-Holland"),
    Place("utrecht-oudegracht", "Oudegracht", 52.0894, 5.1196, "Utrecht"),
    Place("zeist", "Zeist", 52.0907, 5.2330, "Utrecht"),
    Place("amersfoort", "Amersfoort", 52.1561, 5.3878, "Utrecht"),
    Place("hilversum", "Hilversum", 52.2292, 5.1669, "Noord-Holland"),
    Place("rotterdam", "Rotterdam", 51.9225, 4.4792, "Zuid-Holland"),
    Place("groningen", "Groningen", 53.2194, 6.5665, "Groningen"),
]


def cosine_law_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0088 * math.acos(max(-1.0, min(1.0, c)))


def test_distances_agree_with_another_formula_and_the_atlas() -> None:
    for p in PLACES:
        ours = distance_km(*UTRECHT, p.latitude, p.longitude)
        assert ours == pytest.approx(cosine_law_km(*UTRECHT, p.latitude, p.longitude), abs=1e-6)
    amsterdam = distance_km(*UTRECHT, 52.3731, 4.8926)
    assert 34 < amsterdam < 36  # Dam to Dom: about 35 km as the crow flies
    assert distance_km(*UTRECHT, *UTRECHT) == 0.0


@pytest.mark.parametrize(
    ("radius", "venues"),
    [(1, ["utrecht-oudegracht"]), (10, ["utrecht-oudegracht", "zeist"]),
     (30, ["utrecht-oudegracht", "zeist", "hilversum", "amersfoort"]),
     (35.5, ["utrecht-oudegracht", "zeist", "hilversum", "amersfoort", "amsterdam-dam"])],
)  # fmt: skip
def test_a_radius_reaches_the_venues_within_it_nearest_first(
    radius: float, venues: list[str]
) -> None:
    got = reached(PLACES, *UTRECHT, radius_km=radius)
    assert [r.venue for r in got] == venues
    assert all(r.distance_km <= radius for r in got)
    outside = {p.venue for p in PLACES} - set(venues)
    assert all(cosine_law_km(*UTRECHT, p.latitude, p.longitude) > radius
               for p in PLACES if p.venue in outside)  # fmt: skip


def test_a_region_reaches_its_venues_and_radius_or_region_must_be_chosen() -> None:
    assert {r.venue for r in reached(PLACES, *UTRECHT, region="Utrecht")} == {
        "utrecht-oudegracht", "zeist", "amersfoort"}  # fmt: skip
    with pytest.raises(ValueError, match="not both"):
        reached(PLACES, *UTRECHT, radius_km=5, region="Utrecht")
    with pytest.raises(ValueError, match="not both"):
        reached(PLACES, *UTRECHT)
