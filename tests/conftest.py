"""Real Mosquitto and InfluxDB on free loopback ports, data in temporary folders.

The session's broker and database are shared; every test gets its own InfluxDB database,
ingest client id and spool folder, so tests do not see each other's data, and the retained
messages a test leaves on the shared broker (agents' statuses) are cleared after it. Tests
that stop a server start their own. The suite runs in random order (pytest-randomly; `-p
no:randomly` for file order) and ignores the developer's `TAPSENSE_*` variables and
`./tapsense.toml`.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
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
from stack.settings import (
    CONFIG_ENV,
    InfluxSettings,
    IngestSettings,
    MqttSettings,
    RegistrySettings,
    Settings,
)
from tests.postgres import Postgres, start_postgres

HOST = "127.0.0.1"
_EMPTY_CONFIG_DIR = Path(tempfile.mkdtemp(prefix="tapsense-tests-"))


def pytest_configure(config: pytest.Config) -> None:
    """What the tests run against is theirs alone: a developer's `TAPSENSE_*` variables and a
    `./tapsense.toml` would otherwise reach every Settings() here and in child processes."""
    for name in [n for n in os.environ if n.startswith("TAPSENSE_")]:
        del os.environ[name]
    empty = _EMPTY_CONFIG_DIR / "tapsense.toml"
    empty.write_text("# the test suite's own, empty: defaults and what each test sets\n")
    os.environ[CONFIG_ENV] = str(empty)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_EMPTY_CONFIG_DIR, ignore_errors=True)


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


def clear_retained(port: int) -> int:
    """Remove every retained message from the broker on `port`; how many there were."""
    found: queue.SimpleQueue[str] = queue.SimpleQueue()
    subscribed = threading.Event()
    client = mqtt.new_client(f"test-clear-{uuid.uuid4().hex[:8]}", MqttSettings(port=port))
    client.on_message = lambda _c, _u, m: found.put(m.topic) if m.retain else None
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(HOST, port)
    client.loop_start()
    try:
        client.subscribe("#", qos=1)
        assert subscribed.wait(10), "the broker did not confirm the subscription"
        # The broker sends retained messages right after the SUBACK; a quiet moment ends them.
        topics: set[str] = set()
        while True:
            try:
                topics.add(found.get(timeout=0.1))
            except queue.Empty:
                break
        for topic in topics:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
        return len(topics)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture(autouse=True)
def _no_retained_messages_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Agents leave retained statuses on the shared broker; the next test must not see them."""
    yield
    if "broker" in request.fixturenames:
        broker: Broker = request.getfixturevalue("broker")
        if broker.process.process is not None and broker.process.process.poll() is None:
            clear_retained(broker.port)


@pytest.fixture(scope="session")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    i = new_influx(tmp_path_factory.mktemp("influxdb"))
    yield i
    i.process.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    cluster = start_postgres()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty registry database on each engine the registry supports: a test that takes it
    runs twice, on a SQLite file and on a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    cluster: Postgres = request.getfixturevalue("postgres")
    return cluster.new_database()


def make_settings(
    home: Path, broker: Broker, influx: Influx, registry_url: str | None = None, **ingest: object
) -> Settings:
    """A test's own database, client id and (empty, migrated) registry: a SQLite file under
    `home` unless `registry_url` names another."""
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        home=home,
        mqtt=MqttSettings(port=broker.port),
        influx=InfluxSettings(url=influx.url, database=f"test_{tag}"),
        ingest=IngestSettings(client_id=f"ingest-{tag}", **ingest),  # type: ignore[arg-type]
        registry=RegistrySettings(url=registry_url),
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
            target=run_ingest, args=(settings.for_ingest(), self.stop, self.subscribed), daemon=True
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
        return DeadLetterStore(self.settings.for_ingest().deadletter_path)


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
