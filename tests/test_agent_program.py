"""`tapsense-agent`: its config (the provisioned file as is), its drivers against a fake 1-Wire
tree and a recorded pulse stream, and the real program against the real broker, ingest and
InfluxDB, killed with -9 and started again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest

from edge import onewire
from edge.flowmeter import PulseCounter, RecordedEdges
from edge.program import ConfigError, Program, load
from edge.spool import Spool
from edge.wire import Telemetry
from registry import changes
from registry.db import engine_for, transaction
from registry.models import Venue
from registry.provisioning import agent_config, mqtt_login
from stack.settings import Settings
from tests.apiserver import bearer, make_tenant, serving
from tests.conftest import IngestThread, end_session, make_settings, new_broker
from tests.factories import register_venue
from tests.readback import stored_of, wait_for
from timeseries.influx import InfluxQL

W1_SLAVE = "72 01 4b 46 7f ff 0e 10 57 : crc=57 {crc}\n72 01 4b 46 7f ff 0e 10 57 t={milli}\n"


def probe(root: Path, serial: str, milli: int, crc: str = "YES") -> None:
    folder = root / serial
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "w1_slave").write_text(W1_SLAVE.format(crc=crc, milli=milli))


def test_a_probe_reading_and_each_way_it_can_be_no_reading(tmp_path: Path) -> None:
    probe(tmp_path, "28-000000000001", 4125)
    probe(tmp_path, "28-000000000002", 85_000)
    probe(tmp_path, "28-000000000003", -127_000)
    probe(tmp_path, "28-000000000004", 4000, crc="NO")
    (tmp_path / "00-not-a-probe").mkdir()
    assert onewire.probes(tmp_path) == [f"28-00000000000{i}" for i in (1, 2, 3, 4)]
    readings = {s: onewire.read(s, tmp_path) for s in onewire.probes(tmp_path)}
    assert readings["28-000000000001"].c == 4.125
    assert "power-on" in str(readings["28-000000000002"].problem)
    assert "disconnected" in str(readings["28-000000000003"].problem)
    assert "CRC" in str(readings["28-000000000004"].problem)
    gone = onewire.read("28-0000000000ff", tmp_path)
    assert gone.c is None and "missing" in str(gone.problem)


def test_pulses_are_counted_per_line_without_contact_bounce(tmp_path: Path) -> None:
    counter = PulseCounter([17, 27])
    for k in range(100):
        counter.feed(17, k * 1_000_000)  # a pulse a millisecond
        counter.feed(17, k * 1_000_000 + 50_000)  # and its bounce 50 µs later
    counter.feed(27, 5)
    counter.feed(22, 5)  # a line no tap uses
    assert (counter.take(17), counter.take(27), counter.take(17)) == (100, 1, 0)
    assert counter.bounces == 100
    bad = tmp_path / "edges.txt"
    bad.write_text("17 100\n17 oops\n")
    with pytest.raises(ValueError, match="line 2: want `line timestamp_ns`"):
        RecordedEdges(bad)


def provisioned(settings: Settings, venue: str) -> str:
    register_venue(settings, venue, devices=[], taps={"tap-01": {}})
    engine = engine_for(settings.registry_url)
    with transaction(engine) as db:
        row = db.get(Venue, venue)
        assert row is not None
        new = changes.provision_device(db, row, "edge-1")
    engine.dispose()
    return agent_config(mqtt_login(settings.mqtt, new.device, new.mqtt_password), new.device,
                        False)  # fmt: skip


def test_the_provisioned_config_loads_as_is_and_bad_ones_say_why(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(provisioned(settings, "venue-cfg"))
    config = load(path)
    assert (config.agent.venue, config.agent.device, config.taps) == ("venue-cfg", "edge-1", {})
    assert config.agent.spool_path == Path("/var/lib/tapsense-agent/spool.sqlite")
    assert load(path, state_dir=tmp_path).agent.spool_path == tmp_path / "spool.sqlite"
    for text, reason in (
        ("[agent\n", "not valid TOML"),
        (path.read_text() + "[taps.tap-01]\nprobe = '28-x'\nflowline = 17\n",
         r"\[taps.tap-01\] has unknown keys \['flowline'\]"),
        (path.read_text().replace("port = ", "port = 99999 #"), "port must be 1..65535"),
        ("[agent]\nvenue = 'bad venue'\ndevice = 'e'\nspool_path = 's'\n", r"\[agent\]"),
    ):  # fmt: skip
        path.write_text(text)
        with pytest.raises(ConfigError, match=reason):
            load(path)


def agent(config: Path, state: Path, *args: str) -> subprocess.Popen[bytes]:
    log = (state / "agent.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(config), "--state-dir",
         str(state), *args], stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_the_agent_program_stores_its_taps_readings_and_survives_kill_9(
    settings: Settings, tmp_path: Path
) -> None:
    venue = "venue-agent"
    w1 = tmp_path / "w1"
    probe(w1, "28-0316a2791bff", 4250)
    # A recorded pour: 2,800 pulses in 2.8 s on line 17 (half a litre at 5,600 per litre),
    # each with a bounce 30 µs after it.
    edges = tmp_path / "edges.txt"
    edges.write_text("".join(f"17 {k * 1_000_000}\n17 {k * 1_000_000 + 30_000}\n"
                             for k in range(2800)))  # fmt: skip
    # The provisioned file as is, with what only the venue knows added: its wiring (and, for
    # a test, a reading a second).
    config = tmp_path / "agent.toml"
    config.write_text(
        provisioned(settings, venue).replace("[agent]\n", "[agent]\nsample_s = 1\nseal_s = 1\n")
        + f'\n[hardware]\nw1_root = "{w1}"\nedges_file = "{edges}"\n'
        + '\n[taps.tap-01]\nprobe = "28-0316a2791bff"\nflow_line = 17\n'
    )
    state = tmp_path / "state"
    state.mkdir()
    influx = InfluxQL(settings.influx)

    with IngestThread(settings):
        first = agent(config, state)
        try:
            assert wait_for(
                lambda: (
                    stored_of(settings, venue) >= 3
                    and stored_of(settings, venue, "pour", "ml") == 1
                ),
                timeout_s=60,
            ), (state / "agent.log").read_text()
            [[_, ml]] = influx.query(f"SELECT \"ml\" FROM \"pour\" WHERE \"venue\" = '{venue}'")[
                0]["values"]  # fmt: skip
            assert ml == pytest.approx(500.0, abs=1)
            status = subprocess.run(
                [sys.executable, "-m", "edge.cli", "status", "--config", str(config),
                 "--state-dir", str(state)], capture_output=True, text=True,
            )  # fmt: skip
            assert status.returncode == 0 and "connected" in status.stdout, status.stdout
            assert "tap-01: probe 28-0316a2791bff, flow line 17, 4.25 °C" in status.stdout
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
        before = stored_of(settings, venue)
        probe(w1, "28-0316a2791bff", 4500)
        second = agent(config, state)
        try:
            # The spool it left behind goes out; new readings follow.
            assert wait_for(lambda: stored_of(settings, venue) >= before + 3, timeout_s=60)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
        # What ingest had not yet confirmed when it stopped is still in the spool.
        drain(config, state)
    end_session(settings)
    influx.close()
    log = (state / "agent.log").read_text()
    assert "Traceback" not in log, log
    assert spool_depth(state) == 0


def drain(config: Path, state: Path) -> None:
    """Start the agent once more with no taps (so nothing new) until ingest has confirmed all
    its spool held, then stop it."""
    quiet = state / "quiet.toml"
    quiet.write_text(config.read_text().split("\n[taps.")[0])
    drainer = agent(quiet, state)
    try:
        assert wait_for(lambda: spool_depth(state) == 0, timeout_s=60)
    finally:
        drainer.send_signal(signal.SIGTERM)
        assert drainer.wait(30) == 0


def spool_depth(state: Path) -> int:
    """Messages in the agent's spool: sealed, and not yet confirmed stored by ingest."""
    with sqlite3.connect(state / "spool.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_readings_taken_before_the_clock_is_set_are_held_and_stamped_once_it_is(
    tmp_path: Path,
) -> None:
    """A Pi booted without network says 1970: its readings must not go out as 1970 (ingest
    would refuse them as out of range), nor be lost."""
    probe(tmp_path / "w1", "28-0316a2791bff", 4250)
    config = tmp_path / "agent.toml"
    config.write_text(
        '[agent]\nvenue = "v"\ndevice = "edge-1"\nspool_path = "spool.sqlite"\nsample_s = 0.2\n'
        f'seal_s = 0.2\n\n[mqtt]\nport = 9\n\n[hardware]\nw1_root = "{tmp_path / "w1"}"\n\n'
        '[taps.tap-01]\nprobe = "28-0316a2791bff"\n'
    )  # fmt: skip
    wall = {"offset_ms": -int(time.time() * 1000) + 86_400_000}  # 2 January 1970
    program = Program(load(config, state_dir=tmp_path / "state"),
                      wall_ms=lambda: int(time.time() * 1000) + wall["offset_ms"])  # fmt: skip
    stop = threading.Event()
    runner = threading.Thread(target=program.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: len(program.agent._temps) >= 3, timeout_s=20)
        assert program.agent.spool.depth() == 0  # held, not sealed with a 1970 time
        wall["offset_ms"] = 0  # NTP answered
        assert wait_for(lambda: program.agent.spool.depth() > 0, timeout_s=20)
    finally:
        stop.set()
        runner.join(30)
    now = time.time() * 1000
    for _, payload in Spool(tmp_path / "state" / "spool.sqlite").pending(0, 1000):
        for reading in msgspec.json.decode(payload, type=Telemetry).temps:
            assert now - 60_000 < reading.ts <= now  # stamped with the real time it was taken


def api_provisioned(settings: Settings, path: Path) -> None:
    """The agent config the HTTP API answers for a new device edge-2 of `venue-api`, written
    to `path` as it came."""
    with serving(settings) as api:
        tenant = make_tenant(settings, "Brouwerij", "venue-api")
        answer = api.post("/venues/venue-api/devices", json={"id": "edge-2"},
                          headers=bearer(tenant.operator_key))  # fmt: skip
        assert answer.status_code == 201, answer.text
    path.write_text(answer.json()["agent_config"])


def test_the_config_the_api_hands_out_starts_the_agent_as_is(
    settings: Settings, tmp_path: Path
) -> None:
    config, state = tmp_path / "agent.toml", tmp_path / "state"
    state.mkdir()
    api_provisioned(settings, config)
    unchanged = agent(config, state)
    try:
        assert wait_for(lambda: status(state).get("connected") is True, timeout_s=30)
    finally:
        unchanged.send_signal(signal.SIGTERM)
        assert unchanged.wait(30) == 0
    assert "no taps in the config" in (state / "agent.log").read_text()


@pytest.mark.slow
def test_the_agent_loses_nothing_while_the_broker_is_down_a_minute(
    tmp_path: Path, influx: object
) -> None:
    """Wired to a probe, it keeps reading through a minute without its broker, and every
    reading it took is stored once. (The default run holds the same guarantee with the broker
    killed three times: tests/test_end_to_end_ack.py.)"""
    broker = new_broker(tmp_path / "mosquitto")
    settings = make_settings(tmp_path, broker, influx)  # type: ignore[arg-type]
    config, state, w1 = tmp_path / "agent.toml", tmp_path / "state", tmp_path / "w1"
    state.mkdir()
    api_provisioned(settings, config)
    probe(w1, "28-0316a2791bff", 4250)
    config.write_text(
        config.read_text().replace("[agent]\n", "[agent]\nsample_s = 1\nseal_s = 1\n")
        + f'\n[hardware]\nw1_root = "{w1}"\n\n[taps.tap-01]\nprobe = "28-0316a2791bff"\n'
    )  # fmt: skip
    try:
        with IngestThread(settings):
            running = agent(config, state)
            try:
                assert wait_for(lambda: stored_of(settings, "venue-api") >= 3)
                broker.process.stop()
                time.sleep(60)  # the outage itself: what is measured is what survives it
                broker.restart()
                assert wait_for(lambda: status(state).get("connected") is True, timeout_s=60)
            finally:
                running.send_signal(signal.SIGTERM)
                assert running.wait(30) == 0
            taken = status(state)["counters"]["readings"]
            drain(config, state)
            assert wait_for(lambda: stored_of(settings, "venue-api") == taken)
        end_session(settings)
    finally:
        broker.process.stop()
    assert taken > 60  # it kept reading through the outage


def status(state: Path) -> dict:
    path = state / "status.json"
    return json.loads(path.read_text()) if path.exists() else {}  # type: ignore[no-any-return]
