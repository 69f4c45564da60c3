"""Scenarios through the quality core: each fault gives the expected event at the expected time,
and a normal week gives none. The simulator's ground truth is fed in time order, as ingest
would see it, in ten-minute batches; the keg changes staff recorded come as the registry tells
ingest of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest

from ingest.quality import Check, Level, QualityCore, QualityEvent
from registry.db import migrate, open_registry
from registry.directory import Directory, VenueConfig, load_directory
from simulators import scenario as sc
from simulators.fleet import Fleet, GroundTruth
from simulators.provision import provision
from stack.settings import MqttSettings, QualitySettings

SCENARIOS = Path(__file__).parent.parent / "scenarios"
BATCH_MS = 600_000
# Thresholds for the scenarios' beers: the house lager is served at 2-6 °C.
SETTINGS = QualitySettings(warm_max_c=7.0, foam_c=9.0)


@dataclass
class Run:
    truth: GroundTruth
    is_open: dict[str, Callable[[int], bool]]
    directory: Directory  # as ingest reads it once `tapsense simulate` registered the fleet


def registered(scenario: sc.Scenario, home: Path) -> Directory:
    """The scenario's fleet registered as `tapsense simulate` registers it, and the directory
    ingest reads back: beers' serving ranges, keg sizes, opening hours."""
    url = f"sqlite:///{home / 'registry.sqlite'}"
    migrate(url)
    engine = open_registry(url)
    try:
        provision(engine, scenario)
        return load_directory(engine)
    finally:
        engine.dispose()


def simulate(scenario: sc.Scenario, spool: Path) -> Run:
    fleet = Fleet(scenario, MqttSettings(port=9), spool)  # never connected
    fleet.fast_forward()
    fleet.close()
    is_open: dict[str, Callable[[int], bool]] = {v.id: v.is_open for v, _ in fleet.venues}
    return Run(fleet.truth, is_open, registered(scenario, spool))


def check(run: Run, directory: Directory | None = None) -> list[QualityEvent]:
    """The ground truth through the quality core in ten-minute batches, as ingest takes it,
    with the registry's thresholds (or `directory`); keg changes the staff recorded are told
    to the core as the registry would."""
    truth = run.truth
    core = QualityCore(SETTINGS, run.directory if directory is None else directory)
    kegs = sorted((e.ts_ms, e.venue, e.tap, e.detail["keg_l"]) for e in truth.events
                  if e.kind == "keg_change" and e.detail["recorded"] == "true")  # fmt: skip
    temps = sorted(truth.temps, key=lambda r: r[1].ts)
    pours = sorted(truth.pours, key=lambda r: r[1].ts)
    start = min(r.ts for _, r in temps)
    end = max(r.ts for _, r in temps)
    events: list[QualityEvent] = []
    ti = pi = ki = 0
    for batch_end in range(start + BATCH_MS, end + BATCH_MS + 1, BATCH_MS):
        while ki < len(kegs) and kegs[ki][0] < batch_end:
            at, venue, tap, keg_l = kegs[ki]
            events += core.keg_changed(venue, str(tap), float(keg_l), at)
            ki += 1
        batch_t = []
        while ti < len(temps) and temps[ti][1].ts < batch_end:
            batch_t.append(temps[ti])
            ti += 1
        batch_p = []
        while pi < len(pours) and pours[pi][1].ts < batch_end:
            batch_p.append(pours[pi])
            pi += 1
        closed = [not run.is_open[v](r.ts - r.dur_ms) for v, r in batch_p]
        events += core.check(
            (np.array([core.tap_index(v, r.tap) for v, r in batch_t], np.int32),
             np.array([r.ts for _, r in batch_t], np.int64),
             np.array([r.c for _, r in batch_t])),
            (np.array([core.tap_index(v, r.tap) for v, r in batch_p], np.int32),
             np.array([r.ts for _, r in batch_p], np.int64),
             np.array([r.ml for _, r in batch_p]),
             np.array([r.dur_ms for _, r in batch_p], np.int64),
             np.array(closed, np.bool_)),
        )  # fmt: skip
    return events


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def window(name: str, start: str, duration: str) -> sc.Scenario:
    scenario = sc.load(SCENARIOS / f"{name}.yaml")
    return msgspec.structs.replace(scenario, start=datetime.fromisoformat(start), duration=duration)


def warnings(events: list[QualityEvent], check: Check) -> list[QualityEvent]:
    return [e for e in events if e.check is check and e.level is not Level.OK]


@pytest.fixture(scope="module")
def cooler_day(tmp_path_factory: pytest.TempPathFactory) -> list[QualityEvent]:
    scenario = window("cooler-failure", "2026-03-06T12:00:00+01:00", "14h")
    return check(simulate(scenario, tmp_path_factory.mktemp("cooler")))


def test_a_cooler_failure_is_one_venue_alert_in_its_first_hours(cooler_day) -> None:
    cooler = warnings(cooler_day, Check.COOLER_FAILURE)
    assert {(e.venue, e.tap) for e in cooler} == {("venue-003", None)}
    assert ms("2026-03-06T17:00:00+01:00") < cooler[0].ts < ms("2026-03-06T18:00:00+01:00")


def test_the_failing_cooler_warns_of_warming_before_the_beer_is_warm(cooler_day) -> None:
    venue = [e for e in cooler_day if e.venue == "venue-003" and e.level is not Level.OK]
    assert venue[0].check is Check.WARMING_TREND  # the first word is a forecast
    assert venue[0].value > venue[0].ts  # of a crossing still to come
    warm = warnings(venue, Check.WARM_BEER)
    assert warm and venue[0].ts < warm[0].ts
    assert all(e.value > e.ts for e in warnings(venue, Check.WARMING_TREND))


def test_pours_from_a_warm_line_foam(cooler_day) -> None:
    foamy = warnings(cooler_day, Check.FOAMY)
    assert foamy and {e.venue for e in foamy} == {"venue-003"}
    assert all(e.ts > ms("2026-03-06T17:00:00+01:00") for e in foamy)


def test_other_venues_stay_quiet_on_the_cooler_day(cooler_day) -> None:
    faults = (Check.WARM_BEER, Check.WARMING_TREND, Check.COOLER_FAILURE, Check.STUCK_SENSOR,
              Check.DEAD_SENSOR, Check.LEAK, Check.FOAMY)  # fmt: skip
    noisy = [e for e in cooler_day if e.venue != "venue-003" and e.check in faults]
    assert noisy == []


def test_a_warming_line_is_caught_within_minutes_and_alone(tmp_path: Path) -> None:
    events = check(simulate(window("cooler-failure", "2026-03-03T12:00:00+01:00", "10h"), tmp_path))
    line = [e for e in events if e.check in (Check.WARMING_TREND, Check.WARM_BEER)]
    raised = [(e.venue, e.tap) for e in line if e.level is not Level.OK]
    assert set(raised) == {("cafe-dom", "tap-03")}
    assert ms("2026-03-03T14:00:00+01:00") < line[0].ts <= ms("2026-03-03T14:05:00+01:00")
    assert not warnings(events, Check.COOLER_FAILURE)


def test_a_stuck_probe_and_a_silent_one(tmp_path: Path) -> None:
    events = check(simulate(window("festival", "2026-03-14T18:00:00+01:00", "5h"), tmp_path))
    stuck = warnings(events, Check.STUCK_SENSOR)
    assert [(e.venue, e.tap) for e in stuck] == [("cafe-dom", "tap-02")]
    assert ms("2026-03-14T20:00:00+01:00") < stuck[0].ts <= ms("2026-03-14T20:40:00+01:00")
    spikes = warnings(events, Check.IMPLAUSIBLE)
    assert {(e.venue, e.tap) for e in spikes} == {("venue-002", "tap-01")}
    assert not warnings(events, Check.WARM_BEER)  # 85 °C glitches are not warm beer

    flaky = check(
        simulate(window("flaky-network", "2026-03-04T08:00:00+01:00", "2h"), tmp_path / "n")
    )
    dead = warnings(flaky, Check.DEAD_SENSOR)
    assert [(e.venue, e.tap) for e in dead] == [("venue-002", "tap-03")]
    # The last reading came at 08:59:30; fifteen minutes of silence later:
    assert dead[0].ts == ms("2026-03-04T09:14:30+01:00")


def test_a_night_time_leak(tmp_path: Path) -> None:
    events = check(simulate(window("flaky-network", "2026-03-05T00:00:00+01:00", "8h"), tmp_path))
    leak = warnings(events, Check.LEAK)
    assert [(e.venue, e.tap) for e in leak] == [("cafe-dom", "tap-01")]
    assert ms("2026-03-05T02:00:00+01:00") < leak[0].ts <= ms("2026-03-05T02:10:00+01:00")
    after_hours = warnings(events, Check.AFTER_HOURS)
    assert [(e.venue, e.tap) for e in after_hours] == [("cafe-dom", "tap-01")]
    assert after_hours[0].ts == leak[0].ts  # the venue closed at midnight


def test_a_keg_running_dry_is_forecast_before_it_is_empty(tmp_path: Path) -> None:
    scenario = window("normal-week", "2026-03-06T14:00:00+01:00", "14h")
    run = simulate(scenario, tmp_path)
    empties = [(e.venue, e.tap, e.ts_ms) for e in run.truth.events if e.kind == "keg_empty"]
    assert empties, "a Friday night empties kegs"
    events = check(run)
    for venue, tap, empty_at in empties:
        low = [e for e in warnings(events, Check.KEG_LOW)
               if (e.venue, e.tap) == (venue, tap) and e.ts <= empty_at]  # fmt: skip
        assert low and low[0].level is Level.WARNING, (venue, tap)


def test_a_normal_week_raises_no_fault(tmp_path: Path) -> None:
    events = check(simulate(sc.load(SCENARIOS / "normal-week.yaml"), tmp_path))
    faults = [e for e in events if e.check is not Check.KEG_LOW and e.level is not Level.OK]
    assert faults == []


def test_an_overdue_line_cleaning(tmp_path: Path) -> None:
    run = simulate(window("normal-week", "2026-03-02T00:00:00+01:00", "4d"), tmp_path)
    directory = {"cafe-dom": VenueConfig(line_cleaning_days=3)}
    overdue = warnings(check(run, directory), Check.LINE_CLEANING)
    assert {e.tap for e in overdue} == {"tap-01", "tap-02", "tap-03", "tap-04"}
    assert {e.venue for e in overdue} == {"cafe-dom"}  # the others keep the 14-day default
    first_seen = ms("2026-03-02T00:00:30+01:00")
    assert all(e.ts == first_seen + 3 * 86_400_000 for e in overdue)
