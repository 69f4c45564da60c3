"""Start-up of the ingest worker as a service: wait for InfluxDB, warm the kernels, run."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from sqlalchemy import Engine

from ingest.deadletter import DeadLetterStore
from ingest.inflight import InFlight
from ingest.quality import QualityCore, warm_up
from ingest.registry_view import RegistryView
from ingest.worker import IngestWorker
from registry import access
from registry.db import open_registry, transaction
from stack.settings import Settings
from timeseries.influx import InfluxError, Writer, open_writer

_LOGGER = logging.getLogger(__name__)


def _writer_when_ready(settings: Settings, stop: threading.Event) -> Writer | None:
    delay = settings.ingest.retry_initial_s
    while not stop.is_set():
        try:
            return open_writer(settings.influx)
        except InfluxError as exc:
            _LOGGER.warning("InfluxDB not ready (%s); retrying in %.1f s", exc, delay)
        stop.wait(delay)
        delay = min(2 * delay, settings.ingest.retry_max_s)
    return None


def _with_service_login(settings: Settings, engine: Engine) -> Settings:
    """The broker login the registry keeps for ingest, unless one is configured: so that
    `tapsense ingest`, started alone, logs in to the broker `tapsense up` manages."""
    if settings.mqtt.username is not None:
        return settings
    with transaction(engine) as db:
        login = access.stored_service_login(db, "ingest")
    if login is None:
        return settings
    _LOGGER.info("logging in to the broker as %s (the registry's service login)", login[0])
    mqtt = replace(settings.mqtt, username=login[0], password=login[1])
    return settings.model_copy(update={"mqtt": mqtt})


def run_ingest(
    settings: Settings, stop: threading.Event, subscribed: threading.Event | None = None
) -> None:
    """Run until `stop`; `subscribed` is set once the broker confirmed the subscriptions."""
    started = time.monotonic()
    warm_up()
    # Compilation itself happens at import (eager signatures); this is the first call's cost.
    _LOGGER.info("quality kernels warmed in %.2f s", time.monotonic() - started)
    writer = _writer_when_ready(settings, stop)
    if writer is None:
        return
    engine = open_registry(settings.registry_url)
    settings = _with_service_login(settings, engine)
    deadletters = DeadLetterStore(settings.deadletter_path)
    inflight = InFlight(settings.inflight_path)
    if len(inflight):
        _LOGGER.warning(
            "%d messages were in flight when the worker last stopped without cleaning up; "
            "they will be handled one at a time",
            len(inflight),
        )
    try:
        registry = RegistryView(engine, settings.registry.refresh_s)
        quality = QualityCore.restore(
            settings.quality_snapshot_path, settings.quality, registry.directory
        )
        worker = IngestWorker(settings, writer, deadletters, inflight, quality, registry)
        if subscribed is not None:
            worker.subscribed = subscribed
        worker.run(stop)
    finally:
        writer.close()
        deadletters.close()
        inflight.close()
        engine.dispose()
