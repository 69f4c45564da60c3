"""Real Mosquitto and InfluxDB on free loopback ports, data in temporary folders.

The session's broker and database are shared; every test gets its own InfluxDB database,
ingest client id and spool folder, so tests do not see each other's data. Tests that stop a
server start their own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from edge import mqtt
from ingest.deadletter import DeadLetterStore
from ingest.service import run_ingest
from registry.db import migrate
from stack.services import ManagedProcess, free_port, start_influxdb, start_mosquitto
from stack.settings import InfluxSettings, IngestSettings, MqttSettings, Settings

HOST = "127.0.0.1"


@dataclass
class Broker:
    process: ManagedProcess
    port: int
    data_dir: Path

    def restart(self) -> None:
        self.process = start_mosquitto(self.data_dir, HOST, self.port)


@dataclass
class Influx:
    process: ManagedProcess
    port: int
    rpc_port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def restart(self) -> None:
        self.process = start_influxdb(self.data_dir, HOST, self.port, self.rpc_port)


def new_broker(data_dir: Path) -> Broker:
    port = free_port()
    return Broker(start_mosquitto(data_dir, HOST, port), port, data_dir)


def new_influx(data_dir: Path) -> Influx:
    port, rpc_port = free_port(), free_port()
    return Influx(start_influxdb(data_dir, HOST, port, rpc_port), port, rpc_port, data_dir)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = new_broker(tmp_path_factory.mktemp("mosquitto"))
    yield b
    b.process.stop()


@pytest.fixture(scope="session")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    i = new_influx(tmp_path_factory.mktemp("influxdb"))
    yield i
    i.process.stop()


def make_settings(home: Path, broker: Broker, influx: Influx, **ingest: object) -> Settings:
    """A test's own database, client id and (empty, migrated) registry."""
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        home=home,
        mqtt=MqttSettings(port=broker.port),
        influx=InfluxSettings(url=influx.url, database=f"test_{tag}"),
        ingest=IngestSettings(client_id=f"ingest-{tag}", **ingest),  # type: ignore[arg-type]
    )
    migrate(settings.registry_url)
    return settings


@pytest.fixture
def settings(tmp_path: Path, broker: Broker, influx: Influx) -> Settings:
    return make_settings(tmp_path, broker, influx)


def end_session(settings: Settings) -> None:
    """Forget an ingest client's persistent session, so the broker stops queueing for it."""
    client = mqtt.new_client(settings.ingest.client_id, settings.mqtt)
    client.connect(settings.mqtt.host, settings.mqtt.port, clean_start=True)
    client.disconnect()


class IngestThread:
    """The ingest service in a thread of the test process, as `tapsense ingest` runs it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.subscribed = threading.Event()
        self.thread = threading.Thread(
            target=run_ingest, args=(settings, self.stop, self.subscribed), daemon=True
        )

    def __enter__(self) -> IngestThread:
        self.thread.start()
        assert self.subscribed.wait(60), "ingest worker did not subscribe"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "ingest worker did not stop"

    def deadletters(self) -> DeadLetterStore:
        return DeadLetterStore(self.settings.deadletter_path)


@pytest.fixture
def ingest(settings: Settings) -> Iterator[IngestThread]:
    with IngestThread(settings) as worker:
        yield worker
    end_session(settings)


def publisher(settings: Settings) -> paho.Client:
    client = mqtt.new_client(f"test-pub-{uuid.uuid4().hex[:8]}", settings.mqtt)
    client.connect(settings.mqtt.host, settings.mqtt.port)
    client.loop_start()
    return client
