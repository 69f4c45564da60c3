"""No quality event is lost: a worker stopped during an InfluxDB outage, or killed at any point
of a batch, raises after its restart every event the readings call for, in InfluxDB and on the
quality topic (at least once, known by venue, tap, check and time)."""

from __future__ import annotations

import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from edge import mqtt
from edge.wire import (
    QUALITY_TOPIC_ROOT,
    DeviceTopic,
    Pour,
    QualityMessage,
    Telemetry,
    Temperature,
    TopicKind,
    encode,
)
from stack.settings import Settings, environment
from stack.up import start_ingest
from tests.conftest import Broker, IngestThread, end_session, make_settings, new_influx, publisher
from tests.factories import register_venue
from tests.readback import stored_count, wait_for
from timeseries.influx import InfluxQL

T0 = 1_750_000_000_000
VENUE = "venue-durable"
TOPIC = str(DeviceTopic(VENUE, "edge-1", TopicKind.TELEMETRY))
# Nine degrees from the first reading: warm beer once the two-minute grace period is over.
WARM = ("tap-01", "warm_beer", "warning", T0 + 120_000)


class Listener:
    """What an alerts service would hear on the quality topic."""

    def __init__(self, settings: Settings) -> None:
        self.heard: queue.SimpleQueue[QualityMessage] = queue.SimpleQueue()
        self.seen: set[tuple[str | None, str, str, int]] = set()
        self.client = mqtt.new_client(f"alerts-{uuid.uuid4().hex[:6]}", settings.mqtt)
        self.client.on_message = lambda _c, _u, m: self.heard.put(
            msgspec.json.decode(m.payload, type=QualityMessage)
        )
        self.client.connect(settings.mqtt.host, settings.mqtt.port)
        self.client.subscribe(f"{QUALITY_TOPIC_ROOT}/{VENUE}", qos=1)
        self.client.loop_start()

    def events(self) -> set[tuple[str | None, str, str, int]]:
        while not self.heard.empty():
            m = self.heard.get()
            self.seen.add((m.tap, m.check, m.level, m.ts))
        return self.seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listener(settings: Settings) -> Iterator[Listener]:
    heard = Listener(settings)
    yield heard
    heard.close()


def stored_events(settings: Settings) -> set[tuple[str | None, str, str, int]]:
    client = InfluxQL(settings.influx)
    try:
        series = client.query(
            f'SELECT "level" FROM "quality" WHERE "venue" = \'{VENUE}\' GROUP BY "tap", "check"'
        )
    finally:
        client.close()
    return {
        (s["tags"].get("tap") or None, s["tags"]["check"], level, ts)
        for s in series
        for ts, level in s["values"]
    }


def keg_emptied(events: set[tuple[str | None, str, str, int]]) -> bool:
    return any(e[:3] == ("tap-02", "keg_low", "critical") for e in events)


def message(seq: int) -> bytes:
    """Ten seconds of tap-01 at 9 °C and a 200 mL pour from tap-02 (a 1 L keg)."""
    at = T0 + seq * 10_000
    temps = [Temperature(tap="tap-01", ts=at + k * 2000, c=9.0) for k in range(5)]
    pours = [Pour(tap="tap-02", ts=at + 9000, ml=200.0, dur_ms=2000)]
    return encode(Telemetry(v=1, seq=seq, temps=temps, pours=pours))


def test_events_of_a_batch_not_stored_when_the_worker_stopped_come_after_its_restart(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    own_influx = new_influx(tmp_path / "influxdb")
    settings = make_settings(tmp_path, broker, own_influx)
    register_venue(settings, VENUE, taps={"tap-02": {"keg_l": 1.0}})
    heard = Listener(settings)
    try:
        with IngestThread(settings):
            client = publisher(settings)
            client.publish(TOPIC, message(0), qos=1).wait_for_publish(10)
            assert wait_for(lambda: stored_count(settings) == 6)
            own_influx.process.stop()
            for seq in range(1, 15):  # warm past the grace period, the keg poured empty
                client.publish(TOPIC, message(seq), qos=1).wait_for_publish(10)
            client.disconnect()
            assert wait_for(lambda: "InfluxDB write failed" in caplog.text)
        # The worker stopped with the conditions crossed in its kernels but nothing stored.
        own_influx.restart()
        with IngestThread(settings):
            assert wait_for(lambda: WARM in stored_events(settings))
            assert wait_for(lambda: keg_emptied(stored_events(settings)))
            assert wait_for(lambda: WARM in heard.events() and keg_emptied(heard.events()))
        end_session(settings)
    finally:
        heard.close()
        own_influx.process.stop()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_worker_killed_at_random_points_loses_no_event(
    settings: Settings, tmp_path: Path, listener: Listener, seed: int
) -> None:
    register_venue(settings, VENUE, taps={"tap-02": {"keg_l": 1.0}})
    env = {**os.environ, **environment(settings)}
    worker = start_ingest(tmp_path / "logs", env)
    client = publisher(settings)
    sent = threading.Event()

    def publish_slowly() -> None:
        for seq in range(40):
            client.publish(TOPIC, message(seq), qos=1).wait_for_publish(10)
            time.sleep(0.05)
        sent.set()

    stream = threading.Thread(target=publish_slowly, daemon=True)
    stream.start()
    rng = random.Random(seed)
    try:
        for _ in range(3):
            time.sleep(rng.uniform(0.1, 0.8))
            worker.kill()
            worker = start_ingest(tmp_path / "logs", env)
        stream.join(30)
        assert sent.is_set()
        assert wait_for(lambda: WARM in stored_events(settings))
        assert wait_for(lambda: keg_emptied(stored_events(settings)))
        assert wait_for(lambda: WARM in listener.events() and keg_emptied(listener.events()))
    finally:
        client.disconnect()
        worker.stop()
        end_session(settings)
