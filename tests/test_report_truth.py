"""A month of a simulated café, the month the clocks change, written to the real InfluxDB and
read back for the report: every litre by tap and by beer, and the local weekday x hour heat map,
equal what this test computes from the simulator's record on its own."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from reports import metrics
from simulators import scenario as sc
from simulators.fleet import Fleet
from stack.settings import MqttSettings
from tests.conftest import Influx
from timeseries import lineproto
from timeseries.influx import InfluxQL, V1Writer, ensure_database
from timeseries.reads import pours_between
from timeseries.settings import InfluxSettings

SCENARIO = """\
name: maart
description: one café through March 2026, the month the clocks change
start: 2026-02-28T12:00:00+01:00
duration: 32d
seed: 3
sample_interval: 10m
beers:
  - {name: house lager, style: pilsner, serving_min_c: 2.0, serving_max_c: 6.0}
  - {name: witbier, style: witbier, serving_min_c: 3.0, serving_max_c: 7.0}
venues:
  - id: cafe-maart
    city: Utrecht
    lat: 52.0907
    lon: 5.1214
    taps:
      - {id: tap-01, beer: house lager}
      - {id: tap-02, beer: witbier}
      - {id: tap-03, beer: house lager}
    pours_per_tap_hour: 6
"""
VENUE = "cafe-maart"
ZONE = ZoneInfo("Europe/Amsterdam")


def test_a_month_read_back_equals_the_simulators_record(tmp_path: Path, influx: Influx) -> None:
    path = tmp_path / "maart.yaml"
    path.write_text(SCENARIO)
    scenario = sc.load(path)
    fleet = Fleet(scenario, MqttSettings(port=9), tmp_path / "spool")  # never connects
    fleet.fast_forward()
    fleet.close()
    sent = [p for venue, p in fleet.truth.pours if venue == VENUE]

    settings = InfluxSettings(url=influx.url, database=f"report_{uuid.uuid4().hex[:8]}")
    ensure_database(settings)
    writer = V1Writer(settings)
    for i in range(0, len(sent), 5000):
        writer.write(lineproto.body(lineproto.pours(VENUE, i, sent[i : i + 5000])))
    writer.close()

    start, end = metrics.month_bounds(2026, 3, ZONE)
    assert (start, end) == (1_772_319_600_000, 1_774_994_400_000)  # 744 h less the lost one
    assert (end - start) / 3_600_000 == 31 * 24 - 1
    client = InfluxQL(settings)
    try:
        rows = pours_between(client, VENUE, start, end)
    finally:
        client.close()

    # What the record says, computed here per pour with datetime.
    in_month = [p for p in sent if start <= p.ts < end]
    assert len(in_month) < len(sent), "the record must have pours on both sides of the month"
    assert len(rows.ts_ms) == len(in_month)
    beer_of = {t.id: t.beer for t in sc.tap_specs(scenario, scenario.venues[0])}
    by_tap: dict[str, float] = defaultdict(float)
    by_beer: dict[str, float] = defaultdict(float)
    heat = [[0.0] * 24 for _ in range(7)]
    for p in in_month:
        by_tap[p.tap] += p.ml / 1000
        by_beer[beer_of[p.tap]] += p.ml / 1000
        local = datetime.fromtimestamp(p.ts / 1000, UTC).astimezone(ZONE)
        heat[local.weekday()][local.hour] += p.ml / 1000

    assert metrics.litres_by(rows.tap, rows.ml) == pytest.approx(by_tap, rel=1e-12)
    beers = [beer_of[tap] for tap in rows.tap]  # no keg changes: each tap poured one beer
    assert metrics.litres_by(beers, rows.ml) == pytest.approx(by_beer, rel=1e-12)
    grid = metrics.heat_map(rows.ts_ms, rows.ml, ZONE)
    assert np.allclose(grid, np.array(heat), rtol=1e-12, atol=0)
    assert grid.sum() == pytest.approx(sum(by_tap.values()), rel=1e-12)
    best = metrics.ranked(by_beer)[0][0]
    assert best == "house lager"  # two of its taps against one of witbier


def test_a_pour_is_the_beer_of_the_keg_on_at_its_time() -> None:
    pours = np.array([5, 10, 15, 20, 25], dtype=np.int64)
    assert metrics.beer_at(pours, [10, 20], ["bock", "ipa"], "pils") == [
        "pils", "bock", "bock", "ipa", "ipa"]  # fmt: skip
    assert metrics.beer_at(pours, [], [], "pils") == ["pils"] * 5
    # A keg that names no beer brought the tap's beer of now; before the first recorded keg,
    # that keg's beer.
    assert metrics.tap_beer_at(pours, [10, 20], ["bock", None], "pils") == [
        "bock", "bock", "bock", "pils", "pils"]  # fmt: skip
    assert metrics.tap_beer_at(pours, [], [], "pils") == ["pils"] * 5


def test_a_venue_that_is_not_an_id_is_refused(influx: Influx) -> None:
    client = InfluxQL(InfluxSettings(url=influx.url, database="x"))
    try:
        with pytest.raises(ValueError, match="not an id"):
            pours_between(client, "x' OR 1=1 --", 0, 1)
    finally:
        client.close()
