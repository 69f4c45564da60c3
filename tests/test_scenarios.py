"""Scenario files validate with a clear error, and the simulated world does what they say."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from statistics import mean

import msgspec
import pytest

from simulators import scenario as sc
from simulators.fleet import Fleet, GroundTruth
from stack.settings import MqttSettings

SCENARIOS = Path(__file__).parent.parent / "scenarios"
# Never connected: these runs stay in the spools, which is all the world tests need.
NO_BROKER = MqttSettings(port=9)


def window(scenario: sc.Scenario, start: str, duration: str) -> sc.Scenario:
    """The part of a scenario from `start` for `duration` (events keep their times)."""
    return msgspec.structs.replace(scenario, start=datetime.fromisoformat(start), duration=duration)


def run(scenario: sc.Scenario, spool: Path) -> GroundTruth:
    fleet = Fleet(scenario, NO_BROKER, spool)
    fleet.fast_forward()
    fleet.close()
    return fleet.truth


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_ready_scenarios_validate(path: Path) -> None:
    scenario = sc.load(path)
    assert scenario.name == path.stem


def test_extends_adds_events_to_its_base() -> None:
    base = sc.load(SCENARIOS / "normal-week.yaml")
    cooler = sc.load(SCENARIOS / "cooler-failure.yaml")
    assert cooler.venues == base.venues and cooler.fleet == base.fleet
    assert [type(e) for e in cooler.events] == [sc.CoolerFailure, sc.WarmingLine]


def test_the_same_seed_gives_the_same_run(tmp_path: Path) -> None:
    scenario = window(sc.load(SCENARIOS / "festival.yaml"), "2026-03-14T17:00:00+01:00", "3h")
    first = run(scenario, tmp_path / "a")
    second = run(scenario, tmp_path / "b")
    assert first.temps == second.temps and first.pours == second.pours
    assert first.events == second.events
    assert len(first.pours) > 100
    other = run(msgspec.structs.replace(scenario, seed=7), tmp_path / "c")
    assert other.temps != first.temps


BROKEN = [
    ("fault: melted", "line 9, events[0].fault: Invalid enum value 'melted'"),
    ("duration: 2 hours", "line 10, events[0].duration: Expected `str` matching regex"),
    ("venue: nowhere", "line 7, events[0].venue: unknown venue 'nowhere'"),
    ("tap: [1, 2]", "line 8, events[0].tap: Expected `str`, got `array`"),
    ("colour: red", "line 12, events[0]: Object contains unknown field `colour`"),
]
EVENT = """\
name: broken
start: 2026-03-02T00:00:00+01:00
duration: 1d
fleet: {venues: 2}
events:
  - kind: sensor_fault
    venue: venue-001
    tap: tap-01
    fault: stuck
    duration: 2h
    at: 2026-03-02T12:00:00+01:00
"""


@pytest.mark.parametrize(("change", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_scenario_names_the_line_and_field(
    tmp_path: Path, change: str, expected: str
) -> None:
    key = change.split(":")[0]
    lines = EVENT.splitlines()
    replaced = [f"    {change}" if line.startswith(f"    {key}:") else line for line in lines]
    if replaced == lines:
        replaced.append(f"    {change}")
    file = tmp_path / "broken.yaml"
    file.write_text("\n".join(replaced) + "\n")
    with pytest.raises(sc.ScenarioError) as caught:
        sc.load(file)
    assert str(caught.value).startswith(f"{file} {expected}"), str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\nstart: 2026-03-02T00:00:00+01:00\nduration: 1d\n",
            "line 1, top level: a scenario needs `venues`, a `fleet`, or both",
        ),
        (
            "name: x\nstart: 2026-03-02T00:00:00\nduration: 1d\nfleet: {venues: 1}\n",
            "line 2, start: Expected `datetime` with a timezone component",
        ),
        (
            "name: x\nstart: 2026-03-02T00:00:00Z\nfleet: {venues: 1}\n",
            "line 1, top level: Object missing required field `duration`",
        ),
        (
            "name: x\nstart: 2026-03-02T00:00:00Z\nduration: 1d\nfleet:\n  venues: 0\n",
            "line 5, fleet.venues: Expected `int` >= 1",
        ),
        ("name: x\n  start: [\n", "line 2: not valid YAML"),
        ("- just\n- a list\n", "line 1: a scenario is a mapping"),
    ],
)
def test_whole_file_errors_say_where(tmp_path: Path, text: str, expected: str) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(text)
    with pytest.raises(sc.ScenarioError, match=f"^{file} {expected[:30]}".replace("[", r"\[")):
        sc.load(file)


def test_an_error_in_a_base_file_names_the_base(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "name: base\nstart: 2026-03-02T00:00:00Z\nduration: 1d\nfleet: {venues: 2}\n"
        "sensors:\n  dropout: 3\n"
    )
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\n")
    with pytest.raises(
        sc.ScenarioError, match=r"base\.yaml line 6, sensors\.dropout: Expected `float` <= 1\.0"
    ):
        sc.load(tmp_path / "child.yaml")
    (tmp_path / "base.yaml").write_text("extends: child.yaml\nname: base\n")
    with pytest.raises(sc.ScenarioError, match="leads back"):
        sc.load(tmp_path / "child.yaml")


def temps_of(truth: GroundTruth, venue: str, tap: str | None = None) -> list[tuple[int, float]]:
    return [(r.ts, r.c) for v, r in truth.temps if v == venue and (tap is None or r.tap == tap)]


def test_a_failed_cooler_warms_every_tap_of_its_venue_only(tmp_path: Path) -> None:
    scenario = window(sc.load(SCENARIOS / "cooler-failure.yaml"), "2026-03-06T16:00:00+01:00", "8h")
    truth = run(scenario, tmp_path)
    failure_end = datetime.fromisoformat("2026-03-06T23:00:00+01:00").timestamp() * 1000
    late = [
        c for ts, c in temps_of(truth, "venue-003") if failure_end - 3_600_000 <= ts < failure_end
    ]
    others = [
        c for ts, c in temps_of(truth, "venue-001") if failure_end - 3_600_000 <= ts < failure_end
    ]
    assert mean(late) > 9.0 > 6.0 > mean(others)
    assert [e.kind for e in truth.events if e.venue == "venue-003" and e.kind == "cooler_failure"]


def test_faulty_probes_read_as_their_fault_says(tmp_path: Path) -> None:
    festival = window(sc.load(SCENARIOS / "festival.yaml"), "2026-03-14T19:00:00+01:00", "2h")
    truth = run(festival, tmp_path / "f")
    stuck = {
        c
        for ts, c in temps_of(truth, "cafe-dom", "tap-02")
        if ts >= datetime.fromisoformat("2026-03-14T20:00:00+01:00").timestamp() * 1000
    }
    assert len(stuck) == 1
    spikes = [c for _, c in temps_of(truth, "venue-002", "tap-01") if c in (85.0, -40.0)]
    assert spikes

    flaky = window(sc.load(SCENARIOS / "flaky-network.yaml"), "2026-03-04T08:00:00+01:00", "2h")
    truth = run(flaky, tmp_path / "n")
    silent_from = datetime.fromisoformat("2026-03-04T09:00:00+01:00").timestamp() * 1000
    assert all(ts < silent_from for ts, _ in temps_of(truth, "venue-002", "tap-03"))
    assert any(ts >= silent_from for ts, _ in temps_of(truth, "venue-002", "tap-02"))


def test_a_skewed_device_clock_stamps_its_readings_off(tmp_path: Path) -> None:
    flaky = window(sc.load(SCENARIOS / "flaky-network.yaml"), "2026-03-04T08:00:00+01:00", "10m")
    truth = run(flaky, tmp_path)
    start = int(flaky.start.timestamp() * 1000)
    assert min(ts for ts, _ in temps_of(truth, "venue-001")) == start + 30_000 - 90_000
    assert min(ts for ts, _ in temps_of(truth, "venue-002")) == start + 30_000


def test_a_night_leak_shows_as_long_slow_pours(tmp_path: Path) -> None:
    flaky = window(sc.load(SCENARIOS / "flaky-network.yaml"), "2026-03-05T01:00:00+01:00", "6h")
    truth = run(flaky, tmp_path)
    pours = [r for v, r in truth.pours if v == "cafe-dom" and r.tap == "tap-01"]
    assert len(pours) >= 40  # four hours in five-minute pieces
    assert all(r.ml < 100 and r.dur_ms >= 250_000 for r in pours[1:-1])
    assert 3000 < sum(r.ml for r in pours) < 4000  # 15 mL a minute for four hours


def test_festival_venues_pour_more(tmp_path: Path) -> None:
    base = window(sc.load(SCENARIOS / "normal-week.yaml"), "2026-03-07T12:00:00+01:00", "12h")
    festival = msgspec.structs.replace(
        base,
        events=[
            sc.Festival(
                name="fest",
                lat=52.0907,
                lon=5.1214,
                radius_km=100,
                boost=3.0,
                at=base.start,
                duration="1d",
            )
        ],
    )
    quiet = run(base, tmp_path / "q")
    busy = run(festival, tmp_path / "b")
    assert len(busy.pours) > 2 * len(quiet.pours)


def test_an_offline_venue_spools_and_sends_nothing_meanwhile(tmp_path: Path) -> None:
    flaky = window(sc.load(SCENARIOS / "flaky-network.yaml"), "2026-03-07T12:00:00+01:00", "1h")
    fleet = Fleet(flaky, NO_BROKER, tmp_path)
    venues = {venue.id: venue for venue, _ in fleet.venues}
    assert venues["venue-004"].offline(fleet.now_ms + 1)
    assert not venues["venue-001"].offline(fleet.now_ms + 1)
    assert not venues["venue-004"].offline(
        fleet.now_ms + int(timedelta(hours=5).total_seconds() * 1000)
    )
    fleet.close()
