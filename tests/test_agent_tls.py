"""The agent over TLS (`tls = true`, `ca_file`): a real Mosquitto with a TLS listener and a
certificate from a CA of the test's own; an agent that trusts another CA does not connect."""

from __future__ import annotations

import queue
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from edge import mqtt
from edge.agent import AgentConfig, EdgeAgent
from edge.settings import MqttSettings
from edge.wire import DeviceTopic, Telemetry, TopicKind
from stack.services import ManagedProcess, find_binary, free_port, mosquitto_config, tcp_accepts
from tests.readback import wait_for

HOST = "127.0.0.1"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def certificate_authority(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name}", "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return key, cert


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """Plain and TLS listeners; the TLS certificate is for 127.0.0.1, signed by `ca.pem`."""
    ca_key, ca = certificate_authority(tmp_path, "ca")
    key, csr, cert = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.pem"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={HOST}", "-keyout", str(key),
            "-out", str(csr))  # fmt: skip
    extensions = tmp_path / "san.ext"
    extensions.write_text(f"subjectAltName=IP:{HOST}\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(extensions),
            "-out", str(cert))  # fmt: skip
    plain, tls = free_port(), free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        mosquitto_config(tmp_path, HOST, plain)
        + f"listener {tls} {HOST}\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    )
    broker = ManagedProcess("mosquitto", [find_binary("mosquitto"), "-c", str(conf)],
                            tmp_path / "mosquitto.log")  # fmt: skip
    broker.start(tcp_accepts(HOST, tls))
    yield plain, tls, ca
    broker.stop()


def test_the_agent_publishes_over_tls_and_refuses_a_broker_it_cannot_verify(
    tls_broker: tuple[int, int, Path], tmp_path: Path
) -> None:
    plain, tls, ca = tls_broker
    topic = str(DeviceTopic("venue-tls", "edge-1", TopicKind.TELEMETRY))
    received: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    listener = mqtt.new_client(f"listener-{uuid.uuid4().hex[:6]}", MqttSettings(port=plain))
    listener.on_message = lambda _c, _u, message: received.put(bytes(message.payload))
    listener.connect(HOST, plain)
    listener.subscribe(topic, qos=1)
    listener.loop_start()
    config = AgentConfig(venue="venue-tls", device="edge-1", spool_path=tmp_path / "a.sqlite")
    agent = EdgeAgent(config, MqttSettings(port=tls, tls=True, ca_file=ca))
    try:
        agent.connect()
        assert agent.connected.wait(15), "no TLS connection"
        agent.record_temperature("tap-01", 1_750_000_000_000, 4.25)
        agent.seal()
        assert wait_for(lambda: agent.pump() >= 0 and agent.drained(), timeout_s=15)
        message = msgspec.json.decode(received.get(timeout=10), type=Telemetry)
        assert message.temps[0].c == 4.25
    finally:
        agent.close()
        listener.disconnect()
        listener.loop_stop()

    _, other_ca = certificate_authority(tmp_path, "other")
    config = AgentConfig(venue="venue-tls", device="edge-1", spool_path=tmp_path / "b.sqlite")
    stranger = EdgeAgent(config, MqttSettings(port=tls, tls=True, ca_file=other_ca))
    try:
        stranger.connect()
        assert not stranger.connected.wait(5)  # the certificate is not from a CA it trusts
    finally:
        stranger.close(announce_offline=False)
