"""The ingest worker runs the quality core: events reach InfluxDB and the internal MQTT topic,
and a restarted worker continues from its snapshot instead of starting blind."""

from __future__ import annotations

import queue
import uuid

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
from registry.db import engine_for, transaction
from registry.models import LineCleaning
from stack.settings import Settings
from tests.conftest import IngestThread, end_session, publisher
from tests.factories import register_venue
from tests.readback import wait_for
from timeseries.influx import InfluxQL

T0 = 1_750_000_000_000
VENUE = "venue-q"
TOPIC = str(DeviceTopic(VENUE, "edge-1", TopicKind.TELEMETRY))


@pytest.fixture
def registered(settings: Settings) -> Settings:
    register_venue(settings, VENUE)
    return settings


def warm(seq: int, seconds: range) -> bytes:
    temps = [Temperature(tap="tap-01", ts=T0 + s * 1000, c=9.0) for s in seconds]
    return encode(Telemetry(v=1, seq=seq, temps=temps))


def quality_rows(settings: Settings) -> list[list]:
    client = InfluxQL(settings.influx)
    try:
        series = client.query('SELECT "level", "value" FROM "quality" GROUP BY "tap", "check"')
    finally:
        client.close()
    return [[s["tags"]["check"], *row] for s in series for row in s["values"]]


def test_quality_events_are_stored_and_published(registered: Settings) -> None:
    settings = registered
    received: queue.SimpleQueue[QualityMessage] = queue.SimpleQueue()
    listener = mqtt.new_client(f"alerts-{uuid.uuid4().hex[:6]}", settings.mqtt)
    listener.on_message = lambda _c, _u, m: received.put(
        msgspec.json.decode(m.payload, type=QualityMessage)
    )
    listener.connect(settings.mqtt.host, settings.mqtt.port)
    listener.subscribe(f"{QUALITY_TOPIC_ROOT}/#", qos=1)
    listener.loop_start()
    try:
        with IngestThread(settings):
            client = publisher(settings)
            # Nine degrees for three minutes: warm once the two-minute grace period is over.
            client.publish(TOPIC, warm(1, range(0, 180, 10)), qos=1).wait_for_publish(10)
            client.disconnect()
            assert wait_for(lambda: any(r[0] == "warm_beer" for r in quality_rows(settings)))
            message = received.get(timeout=30)
        end_session(settings)
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert (message.venue, message.tap, message.check, message.level) == (
        VENUE,
        "tap-01",
        "warm_beer",
        "warning",
    )
    assert message.ts == T0 + 120_000 and message.value == 9.0
    [row] = [r for r in quality_rows(settings) if r[0] == "warm_beer"]
    assert row[1:] == [T0 + 120_000, "warning", 9.0]


def test_a_restarted_worker_continues_its_grace_period(registered: Settings) -> None:
    settings = registered
    with IngestThread(settings):
        client = publisher(settings)
        client.publish(TOPIC, warm(1, range(0, 90, 10)), qos=1).wait_for_publish(10)
        client.disconnect()
        assert wait_for(
            lambda: bool(InfluxQL(settings.influx).query('SELECT count("c") FROM "temperature"'))
        )
    assert settings.for_ingest().quality_snapshot_path.exists()
    with IngestThread(settings):
        client = publisher(settings)
        client.publish(TOPIC, warm(2, range(90, 150, 10)), qos=1).wait_for_publish(10)
        client.disconnect()
        # Warm since 0 s: after the restart the grace period ends at 120 s, not 210 s.
        assert wait_for(lambda: any(r[0] == "warm_beer" for r in quality_rows(settings)))
    end_session(settings)
    [row] = [r for r in quality_rows(settings) if r[0] == "warm_beer"]
    assert row[1] == T0 + 120_000


def test_a_pour_while_the_venue_is_closed_is_after_hours_flow(settings: Settings) -> None:
    closed = {day: "closed" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    register_venue(settings, VENUE, hours=closed)
    with IngestThread(settings):
        client = publisher(settings)
        pour = Pour(tap="tap-01", ts=T0 + 5000, ml=120.0, dur_ms=3000)
        client.publish(TOPIC, encode(Telemetry(v=1, seq=1, pours=[pour])), qos=1).wait_for_publish(
            10
        )
        client.disconnect()
        assert wait_for(lambda: any(r[0] == "after_hours_flow" for r in quality_rows(settings)))
    end_session(settings)
    [row] = [r for r in quality_rows(settings) if r[0] == "after_hours_flow"]
    assert row[1:] == [T0 + 5000, "warning", 120.0]


def test_a_cleaning_recorded_in_the_registry_clears_the_overdue_warning(
    settings: Settings,
) -> None:
    register_venue(settings, VENUE, taps={"tap-01": {}}, line_cleaning_days=0.0001)  # 8.64 s
    settings = settings.model_copy(
        update={"registry": settings.registry.model_copy(update={"refresh_s": 0.2})}
    )
    with IngestThread(settings):
        client = publisher(settings)
        client.publish(TOPIC, warm(1, range(0, 20, 10)), qos=1).wait_for_publish(10)
        assert wait_for(
            lambda: any(r[0] == "line_cleaning_overdue" for r in quality_rows(settings))
        )
        client.disconnect()
        engine = engine_for(settings.registry_url)
        with transaction(engine) as db:
            db.add(LineCleaning(venue_id=VENUE, tap_id="tap-01", at_ms=T0 + 25_000))
        engine.dispose()
        # No reading follows: the event is written when the worker sees the cleaning.
        assert wait_for(
            lambda: (
                [r[2] for r in quality_rows(settings) if r[0] == "line_cleaning_overdue"]
                == ["warning", "ok"]
            )
        )
    end_session(settings)
