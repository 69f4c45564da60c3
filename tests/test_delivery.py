"""Every reading from edge agents reaches InfluxDB, equal to what was sent, and only once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from simulators import scenario as sc
from simulators.fleet import Fleet, simple_scenario
from simulators.run import register
from simulators.scenario import Scenario
from stack.settings import Settings, environment
from tests.conftest import IngestThread
from tests.readback import (
    assert_stored_once,
    sent_pours,
    sent_temperatures,
    stored_count,
    stored_pours,
    stored_temperatures,
    wait_for,
)

START = datetime(2025, 6, 15, 15, 0, tzinfo=UTC)  # a Sunday, 17:00 in Utrecht: pouring


def scenario(venues: int, taps: int, seed: int, duration_s: int) -> Scenario:
    return simple_scenario(
        venues, taps, seed=seed, sample_interval_s=5, start=START, duration_s=duration_s
    )


def run_fleet(settings: Settings, scenario: Scenario) -> Fleet:
    credentials = register(settings.for_simulators(), scenario)
    fleet = Fleet(scenario, settings.mqtt, settings.home / "spool", credentials=credentials)
    fleet.connect()
    fleet.fast_forward()
    assert fleet.drain(), "agents could not empty their spools"
    return fleet


def test_readings_arrive_equal_to_what_was_sent(settings: Settings, ingest: IngestThread) -> None:
    fleet = run_fleet(settings, scenario(3, 4, seed=7, duration_s=1800))
    fleet.close()
    truth = fleet.truth
    assert len(truth.temps) == 3 * 4 * 360
    assert truth.pours, "a half hour of a normal evening has pours"
    assert wait_for(lambda: stored_count(settings) >= truth.total)
    assert sorted(stored_temperatures(settings)) == sorted(sent_temperatures(truth))
    assert sorted(stored_pours(settings)) == sorted(sent_pours(truth))
    assert ingest.deadletters().count() == 0


def test_spool_survives_an_agent_restart(
    settings: Settings, ingest: IngestThread, tmp_path: Path
) -> None:
    """Readings sealed while the agent was never connected go out when it next runs."""
    short = scenario(1, 2, seed=3, duration_s=600)
    register(settings.for_simulators(), short)
    offline = Fleet(short, settings.mqtt, settings.home / "spool")
    offline.fast_forward()  # never connected: everything stays in the spool
    offline.close()
    assert all(agent.spool.path.exists() for agent in offline.agents)

    again = Fleet(short, settings.mqtt, settings.home / "spool")
    again.connect()
    assert again.drain()
    again.close()
    truth = offline.truth
    assert wait_for(lambda: stored_count(settings) >= truth.total)
    assert sorted(stored_temperatures(settings)) == sorted(sent_temperatures(truth))


@pytest.mark.slow
def test_soak_a_day_of_twenty_venues_arrives_whole(
    settings: Settings, ingest: IngestThread
) -> None:
    """Soak: 20 venues x 8 taps over a simulated day, about 2.8 million readings."""
    fleet = run_fleet(settings, scenario(20, 8, seed=5, duration_s=24 * 3600))
    fleet.close()
    assert_stored_once(settings, fleet.truth, timeout_s=600)


def test_simulate_command_backfills_a_scenario_and_writes_its_ground_truth(
    settings: Settings, ingest: IngestThread
) -> None:
    file = settings.home / "evening.yaml"
    file.write_text(
        "name: evening\n"
        "start: 2025-06-15T17:00:00+02:00\n"
        "duration: 15m\n"
        "sample_interval: 5s\n"
        "fleet: {venues: 2, taps: 2}\n"
    )
    truth = settings.home / "truth"
    env = {**os.environ, **environment(settings)}
    command = [sys.executable, "-m", "stack.cli", "simulate", str(file), "--truth", str(truth)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    sent = [
        msgspec.json.decode(line) for line in (truth / "readings.jsonl").read_bytes().splitlines()
    ]
    temps = sorted(
        (r["venue"], r["tap"], r["ts"], r["c"]) for r in sent if r["kind"] == "temperature"
    )
    assert len(temps) == 2 * 2 * 180
    assert wait_for(lambda: stored_count(settings) >= len(sent))
    assert sorted(stored_temperatures(settings)) == temps
    assert f"sent {len(sent)} readings" in result.stderr


def test_simulate_command_refuses_nonsense_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "simulate", "--venues", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--venues: must be at least 1, not 0" in result.stderr


def test_a_flaky_network_duplicating_and_reordering_still_stores_each_reading_once(
    settings: Settings, ingest: IngestThread
) -> None:
    flaky = sc.load(Path(__file__).parent.parent / "scenarios" / "flaky-network.yaml")
    flaky = msgspec.structs.replace(
        flaky,
        start=datetime(2026, 3, 4, 17, 0, tzinfo=UTC),
        duration="1h",
        network=sc.Network(duplicates=0.3, reorder=0.3),
    )
    fleet = run_fleet(settings, flaky)
    fleet.close()
    published = sum(agent.counters.published for agent in fleet.agents)
    sealed = sum(agent.counters.sealed for agent in fleet.agents)
    assert published > 1.2 * sealed  # the network really did send messages twice
    assert_stored_once(settings, fleet.truth)
