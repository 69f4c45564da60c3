"""The real Mosquitto with users and ACL from the registry: a venue's device speaks only for its
venue, a revoked device is refused and dropped, and a reload keeps everyone else's session."""

from __future__ import annotations

import queue
import threading
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.reasoncodes import ReasonCode

from edge import mqtt
from edge.agent import AgentConfig, EdgeAgent
from edge.wire import DOWNLINK_ROOT, DeviceTopic, Telemetry, Temperature, TopicKind, encode
from registry import changes
from registry.broker import sync_broker
from registry.db import engine_for, transaction
from registry.models import Device, Venue
from registry.provisioning import agent_config, mqtt_login
from stack.services import free_port, start_mosquitto
from stack.settings import MqttSettings, Settings
from tests.conftest import Broker, IngestThread, end_session, make_settings
from tests.factories import register_venue, revoke
from tests.readback import stored_temperatures, wait_for

T0 = 1_750_000_000_000


@dataclass
class Login:
    username: str
    password: str


@pytest.fixture
def secured(tmp_path: Path, influx: object) -> Iterator[tuple[Settings, dict[str, Login]]]:
    """A broker of its own with auth; venues A and B with a device each; an ingest login."""
    auth_dir = tmp_path / "auth"
    port = free_port()
    broker = Broker(start_mosquitto(tmp_path / "mosquitto", "127.0.0.1", port, auth_dir), port,
                    tmp_path / "mosquitto")  # fmt: skip
    settings = make_settings(tmp_path, broker, influx)  # type: ignore[arg-type]
    registry = settings.registry.model_copy(update={"broker_auth_dir": auth_dir})
    settings = settings.model_copy(update={"mqtt": MqttSettings(port=port), "registry": registry})
    for venue in ("venue-a", "venue-b"):
        register_venue(settings, venue, devices=[])
    logins = {}
    engine = engine_for(settings.registry_url)
    with transaction(engine) as db:
        for name in ("venue-a", "venue-b"):
            row = db.get(Venue, name)
            assert row is not None
            new = changes.provision_device(db, row, "edge-1")
            logins[name] = Login(new.mqtt_username, new.mqtt_password)
        for service in ("ingest", "alerts"):
            logins[service] = Login(*changes.service_login(db, service))
    assert sync_broker(engine, auth_dir), "the broker was not told to reload"
    engine.dispose()
    ingest = logins["ingest"]
    settings = settings.model_copy(update={"mqtt": replace(
        settings.mqtt, username=ingest.username, password=ingest.password)})  # fmt: skip
    yield settings, logins
    broker.process.stop()


class Client:
    """A paho client that records what the broker says to it; `login` None: the settings'."""

    def __init__(self, settings: Settings, login: Login | None) -> None:
        self.connack: queue.SimpleQueue[ReasonCode] = queue.SimpleQueue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: queue.SimpleQueue[list[ReasonCode]] = queue.SimpleQueue()
        self.disconnected = threading.Event()
        m = settings.mqtt
        as_user = m if login is None else replace(
            m, username=login.username, password=login.password)  # fmt: skip
        self.client = mqtt.new_client(f"t-{uuid.uuid4().hex[:8]}", as_user)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connack.put(rc)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc)
        self.client.on_subscribe = lambda _c, _u, _m, rcs, _p: self.subacks.put(rcs)
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.connect(m.host, m.port)
        self.client.loop_start()
        self.code = self.connack.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert wait_for(lambda: info.mid in self.pubacks, timeout_s=10)
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def reading(seq: int, ts: int) -> bytes:
    return encode(Telemetry(v=1, seq=seq, temps=[Temperature(tap="tap-01", ts=ts, c=4.0)]))


def test_a_device_publishes_only_under_its_own_venue(secured: tuple) -> None:
    settings, logins = secured
    topic_a = str(DeviceTopic("venue-a", "edge-1", TopicKind.TELEMETRY))
    topic_b = str(DeviceTopic("venue-b", "edge-1", TopicKind.TELEMETRY))
    with IngestThread(settings) as ingest:
        device_a = Client(settings, logins["venue-a"])
        assert not device_a.code.is_failure
        assert not device_a.publish(topic_a, reading(1, T0)).is_failure
        refused = device_a.publish(topic_b, reading(2, T0 + 1000))
        assert refused.getName() == "Not authorized"
        device_a.close()
        # After A's forgery, a reading of B's own: once it is stored, the forgery would be too.
        device_b = Client(settings, logins["venue-b"])
        assert not device_b.publish(topic_b, reading(3, T0 + 2000)).is_failure
        device_b.close()
        assert wait_for(lambda: len(stored_temperatures(settings)) == 2)
        assert sorted(stored_temperatures(settings)) == [
            ("venue-a", "tap-01", T0, 4.0),
            ("venue-b", "tap-01", T0 + 2000, 4.0),
        ]
        assert ingest.deadletters().count() == 0  # the forgery never reached ingest
    end_session(settings)


def test_a_device_hears_only_its_own_venues_downlink(secured: tuple) -> None:
    """Mosquitto grants the subscription, then delivers only what the ACL lets it read."""
    settings, logins = secured
    heard: queue.SimpleQueue[str] = queue.SimpleQueue()
    device_a = Client(settings, logins["venue-a"])
    device_a.client.on_message = lambda _c, _u, message: heard.put(message.topic)
    device_a.client.subscribe(f"{DOWNLINK_ROOT}/#", qos=1)
    device_a.subacks.get(timeout=10)
    alerts = Client(settings, logins["alerts"])
    assert not alerts.publish(f"{DOWNLINK_ROOT}/venue-b/display", b"for B").is_failure
    assert not alerts.publish(f"{DOWNLINK_ROOT}/venue-a/display", b"for A").is_failure
    assert heard.get(timeout=10) == f"{DOWNLINK_ROOT}/venue-a/display"
    assert heard.empty()
    forged = device_a.publish(f"{DOWNLINK_ROOT}/venue-a/display", b"devices only listen")
    assert forged.getName() == "Not authorized"
    device_a.close()
    alerts.close()


def test_strangers_and_wrong_passwords_are_refused(secured: tuple) -> None:
    settings, logins = secured
    nobody = replace(settings.mqtt, username=None, password=None)
    assert Client(settings.model_copy(update={"mqtt": nobody}), None).code.getName() == (
        "Not authorized"
    )
    wrong = Login(logins["venue-a"].username, "guess")
    assert Client(settings, wrong).code.getName() == "Not authorized"


def test_a_revoked_device_is_dropped_and_refused_and_others_keep_their_session(
    secured: tuple,
) -> None:
    settings, logins = secured
    device_a = Client(settings, logins["venue-a"])
    device_b = Client(settings, logins["venue-b"])
    assert not device_a.code.is_failure and not device_b.code.is_failure
    revoke(settings, "venue-a", "edge-1")  # the broker's logins are rewritten on commit

    assert device_a.disconnected.wait(10), "the broker kept the revoked device connected"
    again = Client(settings, logins["venue-a"])
    assert again.code.is_failure
    topic_b = str(DeviceTopic("venue-b", "edge-1", TopicKind.TELEMETRY))
    assert not device_b.disconnected.is_set()
    assert not device_b.publish(topic_b, reading(1, T0)).is_failure
    for client in (device_a, device_b, again):
        client.close()


def test_the_provisioned_agent_config_logs_the_device_in(secured: tuple, tmp_path: Path) -> None:
    settings, _ = secured
    engine = engine_for(settings.registry_url)
    with transaction(engine) as db:
        venue = db.get(Venue, "venue-a")
        assert venue is not None
        new = changes.provision_device(
            db, venue, "edge-2", broker_auth_dir=settings.registry.broker_auth_dir
        )
    engine.dispose()
    text = agent_config(mqtt_login(settings.mqtt, new.device, new.mqtt_password), new.device, False)
    config = tomllib.loads(text)
    agent = AgentConfig(**{**config["agent"], "spool_path": tmp_path / "spool.sqlite"})
    mqtt_settings = MqttSettings(**config["mqtt"])
    assert (agent.venue, agent.device) == ("venue-a", "edge-2")
    device = Client(settings.model_copy(update={"mqtt": mqtt_settings}), None)
    assert not device.code.is_failure
    topic = str(DeviceTopic(agent.venue, agent.device, TopicKind.TELEMETRY))
    assert not device.publish(topic, reading(1, T0)).is_failure
    device.close()


def test_a_change_that_is_rolled_back_never_reaches_the_broker(secured: tuple) -> None:
    settings, logins = secured
    auth_dir = settings.registry.broker_auth_dir
    before = (auth_dir / "passwd").read_text()
    engine = engine_for(settings.registry_url)
    with (
        pytest.raises(RuntimeError, match="the request failed later"),
        transaction(engine) as db,
    ):
        device = db.get(Device, ("venue-a", "edge-1"))
        assert device is not None
        changes.revoke_device(db, device, broker_auth_dir=auth_dir)
        raise RuntimeError("the request failed later")
    engine.dispose()
    assert (auth_dir / "passwd").read_text() == before
    device_a = Client(settings, logins["venue-a"])
    assert not device_a.code.is_failure
    device_a.close()


def test_an_agent_keeps_what_the_broker_refuses(secured: tuple, tmp_path: Path) -> None:
    """An agent configured for another venue than its login: MQTT 5 PUBACKs say "Not
    authorized" (3.1.1 would drop silently), and the agent keeps every message in its spool."""
    settings, logins = secured
    login = logins["venue-a"]
    mqtt_settings = replace(settings.mqtt, username=login.username, password=login.password)
    config = AgentConfig(venue="venue-b", device="edge-1", spool_path=tmp_path / "spool.sqlite")
    agent = EdgeAgent(config, mqtt_settings, clock_ms=lambda: T0)
    for k in range(3):
        agent.record_temperature("tap-01", T0 + k * 1000, 4.0)
        agent.seal()
    agent.connect()
    try:

        def all_refused() -> bool:
            agent.pump()
            return agent.counters.refused == 3

        assert wait_for(all_refused, timeout_s=30, every_s=0.05)
        assert agent.counters.acknowledged == 0
        assert agent.spool.depth() == 3
    finally:
        agent.close()


def test_a_revoked_devices_agent_says_so_and_does_not_hammer_the_broker(
    secured: tuple, tmp_path: Path
) -> None:
    settings, logins = secured
    revoke(settings, "venue-a", "edge-1")
    login = logins["venue-a"]
    config = AgentConfig(venue="venue-a", device="edge-1", spool_path=tmp_path / "spool.sqlite")
    agent = EdgeAgent(config, MqttSettings(port=settings.mqtt.port, username=login.username,
                                           password=login.password))  # fmt: skip
    attempts: list[object] = []
    on_connect = agent._on_connect

    def counting(*args: Any) -> None:
        attempts.append(args[3])
        on_connect(*args)

    agent._client.on_connect = counting
    agent.connect()
    try:
        assert wait_for(lambda: agent.refused is not None, timeout_s=10)
        assert agent.refused in ("Not authorized", "Bad user name or password")
        # paho would try again after 1 s, 2 s, ...; a refused login waits five minutes.
        assert not wait_for(lambda: len(attempts) > 1, timeout_s=5)
    finally:
        agent.close()
