"""A venue open now that sends nothing is an alert, from what the real InfluxDB holds; it
resolves when readings come again. Venues that never sent, or sent only long ago (a replay of
last year), are not judged."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sqlalchemy import select

from alerts.lifecycle import VENUE_SILENT
from alerts.silence import silence_signals
from registry.alert_models import Alert
from registry.db import engine_for, transaction
from registry.models import Venue
from tests.alerting import alert_venue
from tests.conftest import Broker, Influx
from tests.readback import wait_for
from tests.receivers import SmtpSink
from tests.test_alerts_service import AlertsThread, make_setup, prepared
from timeseries import lineproto
from timeseries.events import Level
from timeseries.influx import V1Writer, ensure_database
from timeseries.settings import InfluxSettings

MINUTE_MS = 60_000


def venue(id_: str) -> Venue:
    return Venue(id=id_, hours=None, timezone="Europe/Amsterdam")


def test_silence_begins_when_open_and_ends_with_readings() -> None:
    now = 1_790_000_000_000
    last = {"quiet": now - 20 * MINUTE_MS, "busy": now - MINUTE_MS, "closed": now - 20 * MINUTE_MS}
    venues = [venue("quiet"), venue("busy"), venue("closed"), venue("never")]

    def open_at(v: Venue, _ms: int) -> bool:
        return v.id != "closed"

    raised = silence_signals(last, venues, set(), open_at, now, 900)
    assert [(s.venue, s.level, s.value) for s in raised] == [
        ("quiet", Level.WARNING, now - 20 * MINUTE_MS)
    ]
    assert silence_signals(last, venues, {"quiet"}, open_at, now, 900) == []  # raised already
    back = silence_signals({"quiet": now - 1000}, venues, {"quiet"}, open_at, now, 900)
    assert [(s.venue, s.level) for s in back] == [("quiet", Level.OK)]


def test_the_service_finds_a_silent_venue_in_influxdb(
    tmp_path: Path, broker: Broker, influx: Influx
) -> None:
    tag = uuid.uuid4().hex[:6]
    quiet, busy, replay = f"quiet-{tag}", f"busy-{tag}", f"replay-{tag}"
    influx_settings = InfluxSettings(url=influx.url, database=f"silence_{tag}")
    ensure_database(influx_settings)
    now = int(time.time() * 1000)
    writer = V1Writer(influx_settings)

    def reading(where: str, ts: int) -> None:
        writer.write(
            lineproto.body([f"{lineproto.TEMPERATURE},venue={where},tap=tap-1 c=4.5 {ts}"])
        )

    reading(quiet, now - 20 * MINUTE_MS)
    reading(busy, now - 10_000)
    reading(replay, now - 200 * 24 * 60 * MINUTE_MS)  # a simulated March, months ago
    with SmtpSink() as smtp:
        setup = make_setup(tmp_path, broker, smtp.port, f"alerts-{tag}", f"g-{tag}")
        prepared(setup, "http://127.0.0.1:9/hook", quiet)
        engine = engine_for(setup.registry_url)
        for other in (busy, replay):
            alert_venue(engine, other)
        setup = setup.__class__(
            alerts=setup.alerts.model_copy(update={"silent_after_s": 600, "silent_every_s": 0.2}),
            smtp=setup.smtp, mqtt=setup.mqtt, influx=influx_settings,
            registry_url=setup.registry_url,
        )  # fmt: skip

        def silent() -> list[tuple[str, str]]:
            with transaction(engine) as db:
                rows = db.execute(select(Alert.venue_id, Alert.state)
                                  .where(Alert.check == VENUE_SILENT)).all()  # fmt: skip
            return [tuple(r) for r in rows]  # type: ignore[misc]

        with AlertsThread(setup):
            assert wait_for(lambda: silent() == [(quiet, "open")], 30), silent()
            reading(quiet, int(time.time() * 1000))  # the box is back
            assert wait_for(lambda: silent() == [(quiet, "resolved")], 30), silent()
        engine.dispose()
    writer.close()
