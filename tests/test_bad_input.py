"""Malformed, oversized and hostile payloads are dead-lettered with a reason; the good around
them are stored, and the worker keeps going."""

from __future__ import annotations

import msgspec
import pytest

from edge.wire import DeviceTopic, Pour, Telemetry, Temperature, TopicKind, encode
from stack.settings import Settings
from tests.conftest import IngestThread, publisher
from tests.factories import register_venue, revoke
from tests.readback import stored_temperatures, wait_for
from timeseries.influx import V1Writer

T0 = 1_750_000_000_000
TOPIC = str(DeviceTopic("venue-bad", "edge-1", TopicKind.TELEMETRY))


@pytest.fixture(autouse=True)
def _registered(settings: Settings) -> None:
    register_venue(settings, "venue-bad", devices=["edge-1", "edge-2"])


def good(seq: int, tap: str = "tap-01", n: int = 3) -> bytes:
    temps = [Temperature(tap=tap, ts=T0 + seq * 1000 + k, c=4.0 + k / 10) for k in range(n)]
    return encode(Telemetry(v=1, seq=seq, temps=temps))


HOSTILE: dict[str, bytes] = {
    "truncated": good(90)[:-5],
    "not json": b"\x00\xff\xfe binary garbage \x89PNG",
    "empty": b"",
    "NaN literal": b'{"v":1,"seq":1,"temps":[{"tap":"t","ts":1750000000000,"c":NaN}]}',
    "wrong version": b'{"v":2,"seq":1,"temps":[]}',
    "seq as string": b'{"v":1,"seq":"1","temps":[]}',
    "seq negative": b'{"v":1,"seq":-1}',
    "unknown field": b'{"v":1,"seq":1,"temps":[],"admin":true}',
    "deep nesting": b'{"v":1,"seq":1,"temps":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "oversize": b'{"v":1,"seq":1,"temps":[],"pad":"' + b"x" * 300_000 + b'"}',
    "too many readings": encode(
        Telemetry(v=1, seq=5, temps=[Temperature(tap="t", ts=T0 + k, c=4.0) for k in range(1001)])
    ),
}


def test_bad_messages_are_dead_lettered_and_the_good_ones_stored(
    settings: Settings, ingest: IngestThread
) -> None:
    client = publisher(settings)
    client.publish(TOPIC, good(1), qos=1).wait_for_publish(10)
    for payload in HOSTILE.values():
        client.publish(TOPIC, payload, qos=1).wait_for_publish(10)
    client.publish(TOPIC, good(2), qos=1).wait_for_publish(10)
    client.disconnect()

    assert wait_for(lambda: ingest.deadletters().count() >= len(HOSTILE))
    assert wait_for(lambda: len(stored_temperatures(settings)) == 6)
    stored = sorted(stored_temperatures(settings))
    assert [ts for _, _, ts, _ in stored] == [
        T0 + 1000,
        T0 + 1001,
        T0 + 1002,
        T0 + 2000,
        T0 + 2001,
        T0 + 2002,
    ]
    letters = ingest.deadletters().latest(100)
    assert len(letters) == len(HOSTILE)
    reasons = " | ".join(letter.reason for letter in letters)
    for expected in (
        "malformed",
        "oversize",
        "nested too deeply",
        "at `$.seq`",
        "unknown field `admin`",
        "length <= 1000",
    ):
        assert expected in reasons
    assert {bytes(letter.payload) for letter in letters} == set(HOSTILE.values())


def test_one_bad_reading_keeps_the_others_of_its_message(
    settings: Settings, ingest: IngestThread
) -> None:
    readings = [
        {"tap": "tap-01", "ts": T0, "c": 4.5},
        {"tap": "tap-01", "ts": T0 + 1, "c": 400.0},  # beyond what a probe can report
        {"tap": "tap-01", "ts": 1000, "c": 4.0},  # 1970: clock not set
        {"tap": "tap-01", "ts": T0 + 2, "c": "warm"},
        {"tap": "tap-02", "ts": T0 + 3, "c": 5},  # an integer is a fine temperature
        {"tap": "t,venue=x c=1 1\n", "ts": T0 + 4, "c": 4.0},  # line-protocol injection
    ]
    pours = [
        msgspec.structs.asdict(Pour(tap="tap-01", ts=T0 + 5, ml=330.0, dur_ms=4000)),
        {"tap": "tap-01", "ts": T0 + 6, "ml": -1, "dur_ms": 10},
    ]
    payload = msgspec.json.encode({"v": 1, "seq": 9, "temps": readings, "pours": pours})
    client = publisher(settings)
    client.publish(TOPIC, payload, qos=1).wait_for_publish(10)
    client.disconnect()

    assert wait_for(lambda: ingest.deadletters().count() == 5)
    assert sorted(stored_temperatures(settings)) == [
        ("venue-bad", "tap-01", T0, 4.5),
        ("venue-bad", "tap-02", T0 + 3, 5.0),
    ]
    letters = ingest.deadletters().latest(10)
    assert all(letter.seq == 9 for letter in letters)
    where = sorted(letter.reason.rsplit("at ", 1)[1] for letter in letters)
    assert where == [
        "`$.pours[1].ml`",
        "`$.temps[1].c`",
        "`$.temps[2].ts`",
        "`$.temps[3].c`",
        "`$.temps[5].tap`",
    ]


def test_the_same_message_delivered_twice_is_stored_once(
    settings: Settings, ingest: IngestThread
) -> None:
    client = publisher(settings)
    for _ in range(2):
        client.publish(TOPIC, good(7, n=5), qos=1).wait_for_publish(10)
    client.publish(TOPIC, good(8, n=1), qos=1).wait_for_publish(10)
    client.disconnect()
    assert wait_for(lambda: any(ts == T0 + 8000 for _, _, ts, _ in stored_temperatures(settings)))
    stored = stored_temperatures(settings)
    assert len(stored) == 6
    assert len(set(stored)) == 6


@pytest.mark.parametrize("count", [1500])
def test_the_worker_keeps_reading_after_many_bad_messages(
    settings: Settings, ingest: IngestThread, count: int
) -> None:
    """Telegraf once stopped reading after 1,000 unparseable messages (telegraf#13476)."""
    client = publisher(settings)
    infos = [client.publish(TOPIC, b"{not json", qos=1) for _ in range(count)]
    for info in infos:
        info.wait_for_publish(30)
    client.publish(TOPIC, good(3), qos=1).wait_for_publish(10)
    client.disconnect()
    assert wait_for(lambda: len(stored_temperatures(settings)) == 3)
    # Dead letters are committed just after the batch's points are written: wait for both.
    assert wait_for(lambda: ingest.deadletters().count() == count)


def test_points_influxdb_refuses_are_dead_lettered_and_the_rest_written(
    settings: Settings, ingest: IngestThread
) -> None:
    """InfluxDB 1.x refuses a float `c` in a shard where `c` is already a string (HTTP 400)."""
    writer = V1Writer(settings.influx)
    writer.write(f'temperature,venue=elsewhere,tap=x c="text" {T0}\n'.encode())
    writer.close()
    next_month = T0 + 30 * 24 * 3600 * 1000  # another shard, where `c` is still free
    refused = good(1)
    later = encode(Telemetry(v=1, seq=2, temps=[Temperature(tap="tap-01", ts=next_month, c=4.0)]))
    client = publisher(settings)
    client.publish(TOPIC, refused, qos=1).wait_for_publish(10)
    client.publish(TOPIC, later, qos=1).wait_for_publish(10)
    client.disconnect()

    assert wait_for(lambda: ingest.deadletters().count() == 1)
    [letter] = ingest.deadletters().latest(10)
    assert letter.reason.startswith("InfluxDB refused") and "field type conflict" in letter.reason
    assert bytes(letter.payload) == refused
    assert wait_for(
        lambda: ("venue-bad", "tap-01", next_month, 4.0) in stored_temperatures(settings)
    )


def test_messages_from_unregistered_or_revoked_senders_are_dead_lettered(
    settings: Settings, ingest: IngestThread
) -> None:
    """The broker should never let them through; if it does, ingest still does not store them."""
    revoke(settings, "venue-bad", "edge-2")
    senders = {
        ("venue-nobody-knows", "edge-1"): "venue 'venue-nobody-knows' is not registered",
        ("venue-bad", "edge-9"): "device 'edge-9' is not registered for venue 'venue-bad'",
        ("venue-bad", "edge-2"): "device 'edge-2' of venue 'venue-bad' was revoked",
    }
    client = publisher(settings)
    for venue, device in senders:
        for kind in (TopicKind.TELEMETRY, TopicKind.STATUS):
            payload = good(1) if kind is TopicKind.TELEMETRY else b'{"v":1,"state":"online"}'
            topic = str(DeviceTopic(venue, device, kind))
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.publish(TOPIC, good(2), qos=1).wait_for_publish(10)
    client.disconnect()

    assert wait_for(lambda: ingest.deadletters().count() == 2 * len(senders))
    assert wait_for(lambda: len(stored_temperatures(settings)) == 3)
    assert {venue for venue, _, _, _ in stored_temperatures(settings)} == {"venue-bad"}
    reasons = sorted(letter.reason for letter in ingest.deadletters().latest(10))
    assert reasons == sorted(2 * list(senders.values()))
