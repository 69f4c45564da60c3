"""The edge agent's pure parts: topics, pour detection, the spool, catch-up after an outage."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from edge import mqtt
from edge.agent import TokenBucket
from edge.pour import DetectedPour, FlowCalibration, PourDetector
from edge.settings import MqttSettings
from edge.spool import Spool
from edge.wire import DeviceTopic, Telemetry, Temperature, TopicKind, WireError

T0 = 1_750_000_000_000


def test_topics_round_trip_and_refuse_bad_ids() -> None:
    topic = DeviceTopic("venue-1", "edge_2", TopicKind.TELEMETRY)
    assert str(topic) == "tapsense/v1/venue-1/edge_2/telemetry"
    assert DeviceTopic.parse(str(topic)) == topic
    for bad in (
        "tapsense/v1/a/b",
        "tapsense/v2/a/b/telemetry",
        "tapsense/v1/a b/c/telemetry",
        "tapsense/v1/a/+/telemetry",
        "tapsense/v1/a/b/config",
    ):
        with pytest.raises(WireError):
            DeviceTopic.parse(bad)


def test_pour_ends_after_the_idle_gap_with_the_calibrated_volume() -> None:
    detector = PourDetector(FlowCalibration(k_factor=5000, idle_gap_ms=1000, min_ml=15))
    assert detector.feed(T0, 0) is None
    assert detector.feed(T0 + 500, 1000) is None  # 200 mL
    assert detector.feed(T0 + 1000, 1500) is None  # 300 mL more
    assert detector.feed(T0 + 1500, 0) is None  # idle, but not for long enough
    assert detector.feed(T0 + 2000, 0) == DetectedPour(end_ms=T0 + 1000, ml=500.0, duration_ms=500)
    assert detector.feed(T0 + 3000, 0) is None


def test_drips_below_the_minimum_are_not_pours() -> None:
    detector = PourDetector(FlowCalibration(k_factor=5000, idle_gap_ms=1000, min_ml=15))
    detector.feed(T0, 50)  # 10 mL
    assert detector.feed(T0 + 1000, 0) is None


def test_calibration_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="k_factor"):
        FlowCalibration(k_factor=0)


def test_spool_numbers_messages_and_keeps_them_until_removed(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    seqs = [spool.add([Temperature(tap="t", ts=T0 + k, c=4.0)], []) for k in range(3)]
    assert seqs == [1, 2, 3]
    spool.remove([1, 2])
    spool.close()

    reopened = Spool(path)  # an agent restart
    assert reopened.depth() == 1
    [(seq, payload)] = reopened.pending(0, 10)
    assert seq == 3
    assert msgspec.json.decode(payload, type=Telemetry).seq == 3
    reopened.remove([3])
    assert reopened.add([], []) == 4  # numbers are never reused, even once the spool is empty


def test_catch_up_after_an_outage_is_bounded_by_the_rate() -> None:
    bucket = TokenBucket(rate=5, burst=20)
    assert bucket.available(100.0) == 20  # a full window at once after reconnecting ...
    bucket.take(20)
    assert bucket.available(100.0) == 0
    assert bucket.available(101.0) == 5  # ... then no more than 5 messages a second
    bucket.take(5)
    assert bucket.available(101.5) == 2
    assert bucket.available(1000.0) == 20  # idle time does not bank more than one burst


def test_the_agents_broker_settings_validate_themselves() -> None:
    assert MqttSettings(port=1883, keepalive_s=60).port == 1883
    with pytest.raises(ValueError, match=r"port must be 1\.\.65535, not 0; keepalive_s must be"):
        MqttSettings(port=0, keepalive_s=1)


def test_a_full_spool_drops_its_oldest_and_counts_what_it_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_messages=100)
    reading = [Temperature(tap="t1", ts=1_750_000_000_000, c=4.0)] * 3
    for _ in range(130):
        spool.add(reading, [])
    assert spool.depth() <= 100
    messages, readings = spool.lost()
    assert messages >= 30 and readings == 3 * messages
    assert [seq for seq, _ in spool.pending(0, 1)] == [messages + 1]  # the oldest went
    spool.close()
    assert Spool(tmp_path / "spool.sqlite").lost() == (messages, readings)  # kept on disk


def test_a_full_disk_drops_the_oldest_messages_and_says_so(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    reading = [Temperature(tap="t1", ts=1_750_000_000_000 + k, c=4.0) for k in range(50)]
    spool.add(reading, [])
    # The database may not grow past its size now: the disk, as far as SQLite can tell, is full.
    pages = spool._db.execute("PRAGMA page_count").fetchone()[0]
    spool._db.execute(f"PRAGMA max_page_count = {pages + 2}")
    sealed = [spool.add(reading, []) for _ in range(40)]
    assert all(sealed)  # every new message found room: old ones made way
    messages, readings = spool.lost()
    assert messages > 0 and readings == 50 * messages
    assert spool.depth() + messages == 41


def test_every_message_sealed_before_a_kill_9_is_in_the_spool_after_it(tmp_path: Path) -> None:
    """The sealer is killed at random moments, twenty times: each message `add` returned is
    there, whole, when the spool is opened again; no torn or empty message appears."""
    path = tmp_path / "spool.sqlite"
    sealed: set[int] = set()
    rng = random.Random(7)
    for _ in range(20):
        sealer = subprocess.Popen([sys.executable, "-m", "tests.spool_sealer", str(path)],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert sealer.stdout is not None
        sealed.add(int(sealer.stdout.readline()))  # running, and sealing
        time.sleep(rng.uniform(0.0, 0.2))
        sealer.kill()
        out, _ = sealer.communicate()
        sealed.update(int(line) for line in out.split())
    spool = Spool(path)
    kept = dict(spool.pending(0, 1_000_000))
    assert sealed <= set(kept)
    for payload in kept.values():
        assert len(msgspec.json.decode(payload, type=Telemetry).temps) == 50


def test_a_fleets_reconnects_are_spread_out() -> None:
    firsts = []
    for k in range(40):
        client = mqtt.new_client(f"c{k}", MqttSettings())
        firsts.append(client._reconnect_min_delay)
    assert min(firsts) >= mqtt.RECONNECT_MIN_S
    assert max(firsts) <= mqtt.RECONNECT_MIN_S + mqtt.RECONNECT_JITTER_S
    assert len(set(firsts)) > 1  # not the whole fleet at the same second
