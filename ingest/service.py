"""Start-up of the ingest worker as a service: wait for InfluxDB, warm the kernels, run."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from ingest.deadletter import DeadLetterStore
from ingest.inflight import InFlight
from ingest.quality import QualityCore, warm_up
from ingest.registry_view import RegistryView
from ingest.settings import IngestSetup
from ingest.worker import IngestWorker
from registry import access
from registry.db import open_registry
from timeseries.influx import InfluxError, Writer, open_writer

_LOGGER = logging.getLogger(__name__)


def _writer_when_ready(setup: IngestSetup, stop: threading.Event) -> Writer | None:
    delay = setup.ingest.retry_initial_s
    while not stop.is_set():
        try:
            return open_writer(setup.influx)
        except InfluxError as exc:
            _LOGGER.warning("InfluxDB not ready (%s); retrying in %.1f s", exc, delay)
        stop.wait(delay)
        delay = min(2 * delay, setup.ingest.retry_max_s)
    return None


def run_ingest(
    setup: IngestSetup, stop: threading.Event, subscribed: threading.Event | None = None
) -> None:
    """Run until `stop`; `subscribed` is set once the broker confirmed the subscriptions."""
    started = time.monotonic()
    warm_up()
    # Compilation itself happens at import (eager signatures); this is the first call's cost.
    _LOGGER.info("quality kernels warmed in %.2f s", time.monotonic() - started)
    writer = _writer_when_ready(setup, stop)
    if writer is None:
        return
    engine = open_registry(setup.registry_url)
    setup = replace(setup, mqtt=access.mqtt_with_service_login(engine, "ingest", setup.mqtt))
    deadletters = DeadLetterStore(setup.deadletter_path)
    inflight = InFlight(setup.inflight_path)
    if len(inflight):
        _LOGGER.warning(
            "%d messages were in flight when the worker last stopped without cleaning up; "
            "they will be handled one at a time",
            len(inflight),
        )
    try:
        registry = RegistryView(engine, setup.registry_refresh_s)
        quality = QualityCore.restore(
            setup.quality_snapshot_path, setup.quality, registry.directory
        )
        worker = IngestWorker(setup, writer, deadletters, inflight, quality, registry, subscribed)
        worker.run(stop)
    finally:
        writer.close()
        deadletters.close()
        inflight.close()
        engine.dispose()
