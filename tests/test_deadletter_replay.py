"""Dead letters exported as JSON lines and replayed after a fix, on the real broker and
InfluxDB: a venue registered late gets its refused readings stored, once."""

from __future__ import annotations

import base64
import json

import pytest

from edge.wire import DeviceTopic, Telemetry, Temperature, TopicKind, encode
from ingest.deadletter import Selection
from stack.cli import build_parser
from stack.settings import Settings
from tests.conftest import IngestThread, publisher
from tests.factories import register_venue
from tests.readback import stored_temperatures, wait_for

T0 = 1_750_000_000_000
LATE = "venue-late"


def command(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(["deadletters", *argv])
    return int(args.run(settings, args))


def readings(seq: int) -> bytes:
    temps = [Temperature(tap="tap-01", ts=T0 + seq * 1000 + k, c=4.0) for k in range(3)]
    return encode(Telemetry(v=1, seq=seq, temps=temps))


def test_readings_of_a_venue_registered_late_are_replayed_once(
    settings: Settings, ingest: IngestThread, capsys: pytest.CaptureFixture[str]
) -> None:
    register_venue(settings, "venue-early")
    early = str(DeviceTopic("venue-early", "edge-1", TopicKind.TELEMETRY))
    late = str(DeviceTopic(LATE, "edge-1", TopicKind.TELEMETRY))
    too_hot = b'{"v":1,"seq":9,"temps":[{"tap":"tap-01","ts":%d,"c":400.0}]}' % T0
    client = publisher(settings)
    for topic, payload in [(late, readings(1)), (late, readings(2)), (early, too_hot),
                           (str(DeviceTopic(LATE, "edge-1", TopicKind.STATUS)),
                            b'{"v":1,"state":"online"}')]:  # fmt: skip
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.disconnect()
    # Other tests' venues' retained statuses reach this worker too: count only these venues'.
    ours = (Selection(topic=f"/{LATE}/"), Selection(topic="/venue-early/"))
    assert wait_for(lambda: sum(ingest.deadletters().count(s) for s in ours) == 4)
    assert stored_temperatures(settings) == []

    register_venue(settings, LATE)
    assert command(settings, "replay", "--topic", f"/{LATE}/") == 0
    assert "replayed 3: 3 stored and marked replayed, 0 refused again" in capsys.readouterr().out
    assert sorted(ts - T0 for _, _, ts, _ in stored_temperatures(settings)) == [
        1000, 1001, 1002, 2000, 2001, 2002
    ]  # fmt: skip

    # Again: nothing left to replay; and a replay forced by id stores nothing twice.
    assert command(settings, "replay", "--topic", f"/{LATE}/") == 0
    assert "nothing to replay" in capsys.readouterr().out
    assert len(stored_temperatures(settings)) == 6

    # A refused reading is replayed in an envelope of its own, and refused again: 400 °C is
    # still beyond what a probe reports. Its row stays, not marked replayed.
    assert command(settings, "replay", "--topic", "/venue-early/") == 0
    out = capsys.readouterr().out
    assert "1 refused again" in out and "`$.temps[0].c`" in out
    assert len(stored_temperatures(settings)) == 6

    assert command(settings, "export") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    lines = [
        line for line in lines if f"/{LATE}/" in line["topic"] or "/venue-early/" in line["topic"]
    ]
    assert len(lines) == 4
    assert [bool(line["replayed"]) for line in lines].count(True) == 3
    hot = next(line for line in lines if "venue-early" in line["topic"])
    assert hot["seq"] == 9 and not hot["replayed"]
    assert base64.b64decode(hot["payload_base64"]) == b'{"tap":"tap-01","ts":%d,"c":400.0}' % T0
