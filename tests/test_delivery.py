"""Every reading from edge agents reaches InfluxDB, equal to what was sent, and only once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from simulators.fleet import Fleet, FleetConfig
from stack.settings import Settings, environment
from tests.conftest import IngestThread
from tests.readback import (
    sent_pours,
    sent_temperatures,
    stored_count,
    stored_pours,
    stored_temperatures,
    wait_for,
)

START_MS = 1_750_000_000_000


def run_fleet(settings: Settings, config: FleetConfig, duration_s: float) -> Fleet:
    fleet = Fleet(config, settings.mqtt, settings.home / "spool")
    fleet.connect()
    fleet.fast_forward(START_MS, duration_s)
    assert fleet.drain(), "agents could not empty their spools"
    return fleet


def test_readings_arrive_equal_to_what_was_sent(settings: Settings, ingest: IngestThread) -> None:
    fleet = run_fleet(settings, FleetConfig(venues=3, taps_per_venue=4, seed=7), 1800)
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
    config = FleetConfig(venues=1, taps_per_venue=2, seed=3)
    offline = Fleet(config, settings.mqtt, settings.home / "spool")
    offline.fast_forward(START_MS, 600)  # never connected: everything stays in the spool
    offline.close()
    assert all(agent.spool.path.exists() for agent in offline.agents)

    again = Fleet(config, settings.mqtt, settings.home / "spool")
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
    fleet = run_fleet(settings, FleetConfig(venues=20, taps_per_venue=8, seed=5), 24 * 3600)
    fleet.close()
    truth = fleet.truth
    assert wait_for(lambda: stored_count(settings) >= truth.total, timeout_s=600)
    assert sorted(stored_temperatures(settings)) == sorted(sent_temperatures(truth))
    assert sorted(stored_pours(settings)) == sorted(sent_pours(truth))


def test_simulate_command_backfills_and_writes_its_ground_truth(
    settings: Settings, ingest: IngestThread
) -> None:
    truth_file = settings.home / "truth.jsonl"
    env = {**os.environ, **environment(settings)}
    command = [
        sys.executable,
        "-m",
        "stack.cli",
        "simulate",
        "--venues",
        "2",
        "--taps",
        "2",
        "--fast-forward",
        "900",
        "--truth",
        str(truth_file),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    sent = [msgspec.json.decode(line) for line in truth_file.read_bytes().splitlines()]
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
