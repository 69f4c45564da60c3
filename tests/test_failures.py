"""Delivery through failures: a worker killed mid-stream, InfluxDB down, the broker away.

In each, every reading the simulated sensors produced ends up in InfluxDB exactly once.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulators.fleet import AgentTuning, Fleet, simple_scenario
from simulators.run import register
from simulators.scenario import Scenario
from stack.settings import Settings, environment
from stack.up import start_ingest
from tests.conftest import Broker, IngestThread, end_session, make_settings, new_broker, new_influx
from tests.readback import (
    assert_stored_once,
    stored_count,
    wait_for,
)

START = datetime(2025, 10, 9, 17, 0, tzinfo=UTC)
# Slow enough that the stream lasts seconds, so a failure lands in the middle of it.
THROTTLED = AgentTuning(catchup_messages_per_s=10)


def scenario(duration_s: int) -> Scenario:
    return simple_scenario(2, 4, seed=11, sample_interval_s=5, start=START, duration_s=duration_s)


def settings_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **environment(settings)}


class Stream:
    """A fleet publishing its spooled readings in a background thread."""

    def __init__(self, settings: Settings, duration_s: int, *, logins: bool = False) -> None:
        """`logins`: the agents log in with their devices' logins (an authenticated broker)."""
        credentials = register(settings.for_simulators(), scenario(duration_s))
        self.fleet = Fleet(
            scenario(duration_s), settings.mqtt, settings.home / "spool", THROTTLED,
            credentials=credentials if logins else None,
        )  # fmt: skip
        self.fleet.connect()
        self.fleet.fast_forward()
        self.drained = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        if self.fleet.drain(timeout_s=300):
            self.drained.set()

    def finish(self) -> None:
        self.thread.join(310)
        assert self.drained.is_set(), "agents could not empty their spools"
        self.fleet.close()


def test_ingest_killed_mid_stream_loses_nothing_and_stores_nothing_twice(
    settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(settings)
    worker = start_ingest(tmp_path / "logs", env)
    stream = Stream(settings, duration_s=4 * 3600)
    total = stream.fleet.truth.total
    assert wait_for(lambda: stored_count(settings) >= 2000)
    worker.kill()  # SIGKILL: no flush, no goodbye
    at_kill = stored_count(settings)
    assert at_kill < total, "the stream ended before the kill; it must be killed mid-stream"
    worker = start_ingest(tmp_path / "logs", env)
    try:
        stream.finish()
        assert_stored_once(settings, stream.fleet.truth)
    finally:
        worker.stop()
        end_session(settings)


def test_influxdb_down_for_30_seconds_under_a_stream(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    own_influx = new_influx(tmp_path / "influxdb")
    settings = make_settings(tmp_path, broker, own_influx)
    try:
        with IngestThread(settings) as ingest:
            stream = Stream(settings, duration_s=3 * 3600)
            assert wait_for(lambda: stored_count(settings) >= 1000)
            before = stored_count(settings)
            own_influx.process.stop()
            assert before < stream.fleet.truth.total, "the outage must fall inside the stream"
            assert not ingest.stop.wait(30)
            own_influx.restart()
            stream.finish()
            assert_stored_once(settings, stream.fleet.truth)
            assert "InfluxDB write failed" in caplog.text
        end_session(settings)
    finally:
        own_influx.process.stop()


def test_broker_away_from_the_agents_their_spools_deliver_afterwards(
    tmp_path: Path, influx: object
) -> None:
    own_broker = new_broker(tmp_path / "mosquitto")
    settings = make_settings(tmp_path, own_broker, influx)  # type: ignore[arg-type]
    try:
        with IngestThread(settings):
            register(settings.for_simulators(), scenario(3600))
            fleet = Fleet(scenario(3600), settings.mqtt, settings.home / "spool", THROTTLED)
            fleet.connect()
            fleet.advance_to(fleet.now_ms + 1800 * 1000)
            assert fleet.drain()
            first_half = fleet.truth.total
            assert wait_for(lambda: stored_count(settings) >= first_half)
            own_broker.process.stop()
            # The venues keep measuring while the broker is unreachable.
            fleet.fast_forward()
            depth = sum(agent.spool.depth() for agent in fleet.agents)
            assert depth > 0 and not any(agent.connected.is_set() for agent in fleet.agents)
            own_broker.restart()
            assert fleet.drain(timeout_s=180)
            fleet.close()
            assert_stored_once(settings, fleet.truth)
    finally:
        own_broker.process.stop()
