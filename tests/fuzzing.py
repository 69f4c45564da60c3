"""Hostile input for every boundary, and the judges that say what became of it.

Strategies: arbitrary bytes, and valid payloads mutated the ways real faults and attackers
mutate them (flipped bytes, truncation, invalid UTF-8 inside every string, huge and tiny
numbers, deep nesting, duplicate keys), and envelopes whose readings hold anything JSON can.
`IngestJudge` runs a message through the worker's own path (decode, registry check, quality
kernels, line protocol) and writes what it stores to the real InfluxDB: the only outcomes it
allows are "stored" and "refused with a reason", and every reading is one or the other.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass

import msgspec
from hypothesis import strategies as st

from edge.mqtt import Inbound
from edge.wire import DeviceTopic, Pour, Status, Telemetry, Temperature, TopicKind, encode
from ingest.batch import BatchBuilder
from ingest.decode import REASON_TEXT_LIMIT
from ingest.quality import QualityCore
from ingest.registry_view import RegistryView
from registry.db import engine_for
from stack.settings import Settings
from tests.factories import register_venue
from timeseries import lineproto
from timeseries.influx import InfluxRejected, V1Writer, ensure_database

VENUE = "venue-fuzz"
TELEMETRY = str(DeviceTopic(VENUE, "edge-1", TopicKind.TELEMETRY))
STATUS = str(DeviceTopic(VENUE, "edge-1", TopicKind.STATUS))
T0 = 1_750_000_000_000
FLUSH_LINES = 5000

INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]
EXTREME_NUMBERS = [
    b"1e309", b"-1e309", b"1e-400", b"4.9e-324", b"18446744073709551616",
    b"-9223372036854775809", b"9223372036854775807", b"-0", b"0.0", b"1" + b"0" * 400,
    b"NaN", b"Infinity", b"-Infinity", b"1.7976931348623157e308", b"01", b"1.", b".5",
]  # fmt: skip
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")

hostile_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=80),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(["tap-01", "tap-02", T0, T0 + 1000, 4.5, 330.0, 4000]),
)


@st.composite
def valid_telemetry(draw: st.DrawFn) -> bytes:
    taps = st.sampled_from(["tap-01", "tap-02", "tap-03"])
    ts = st.integers(T0, T0 + 86_400_000)
    temps = draw(st.lists(st.builds(Temperature, tap=taps, ts=ts,
                                    c=st.floats(-55, 125)), max_size=20))  # fmt: skip
    pours = draw(st.lists(st.builds(Pour, tap=taps, ts=ts, ml=st.floats(1, 2000),
                                    dur_ms=st.integers(0, 60_000)), max_size=5))  # fmt: skip
    return encode(Telemetry(v=1, seq=draw(st.integers(0, 2**63 - 1)), temps=temps, pours=pours))


def valid_status() -> st.SearchStrategy[bytes]:
    return st.sampled_from([encode(Status(v=1, state="online")),
                            encode(Status(v=1, state="offline"))])  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid payload broken in one of the ways payloads break."""
    payload = draw(valid)
    how = draw(st.sampled_from(["flip", "truncate", "utf8", "numbers", "nest", "duplicate"]))
    if how == "flip":
        data = bytearray(payload)
        for at in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[at] ^= draw(st.integers(1, 255))
        return bytes(data)
    if how == "truncate":
        return payload[: draw(st.integers(0, len(payload) - 1))]
    if how == "utf8":  # into every string, keys included
        bad = draw(st.sampled_from(INVALID_UTF8))
        return _STRING.sub(lambda m: m[0][:-1] + bad + b'"', payload)
    if how == "numbers":
        return _NUMBER.sub(lambda _m: draw(st.sampled_from(EXTREME_NUMBERS)), payload)
    if how == "nest":
        depth = draw(st.sampled_from([2, 64, 1000, 100_000]))
        return payload.replace(b":", b":" + b"[" * depth, 1).replace(b",", b"]" * depth + b",", 1)
    key = draw(st.sampled_from([b'"v":2,', b'"seq":-1,', b'"temps":7,', b'"v":1,']))
    return payload.replace(b"{", b"{" + key, 1)


@st.composite
def hostile_readings(draw: st.DrawFn) -> tuple[bytes, int]:
    """A valid envelope whose readings hold anything: (payload, how many readings)."""
    fields = {"temps": ["tap", "ts", "c"], "pours": ["tap", "ts", "ml", "dur_ms"]}
    body: dict[str, object] = {"v": 1, "seq": draw(st.integers(0, 2**63 - 1))}
    count = 0
    valid = {"temps": {"tap": "tap-01", "ts": T0, "c": 4.5},
             "pours": {"tap": "tap-02", "ts": T0, "ml": 330.0, "dur_ms": 4000}}  # fmt: skip
    for name, keys in fields.items():
        hostile = st.fixed_dictionaries({k: hostile_values for k in keys},
                                        optional={"extra": hostile_values})  # fmt: skip
        good: st.SearchStrategy[dict[str, object]] = st.builds(
            dict, st.just(valid[name]), ts=st.integers(T0, T0 + 10**6)
        )
        readings = draw(st.lists(st.one_of(hostile, good), max_size=8))
        body[name] = readings
        count += len(readings)
    return msgspec.json.encode(body), count


def any_payload(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=2048), mutated(valid), valid)


@dataclass
class Outcome:
    stored: int  # readings (or a status) turned into points
    refused: int  # dead letters: the whole message, or readings of it
    whole: bool  # the message was refused as a whole


class IngestJudge:
    """The worker's path for one message at a time, its points written to the real InfluxDB."""

    def __init__(self, settings: Settings) -> None:
        register_venue(settings, VENUE, taps={"tap-01": {}, "tap-02": {}})
        self.engine = engine_for(settings.registry_url)
        registry = RegistryView(self.engine, settings.registry.refresh_s)
        quality = QualityCore(settings.quality, registry.directory)
        self.builder = BatchBuilder(settings.ingest.max_payload_bytes, quality, registry)
        ensure_database(settings.influx)
        self.writer = V1Writer(settings.influx)
        self.pending: list[str] = []
        self.tally: Counter[str] = Counter()
        self.started = time.monotonic()

    def judge(self, topic: str, payload: bytes) -> Outcome:
        now = int(time.time() * 1000)
        message = Inbound(1, 1, 1, topic, payload, False, now)
        batch = self.builder.build([message], now)
        events = self.builder.check_quality(batch)
        for rejection in batch.rejections:
            assert rejection.reason.strip(), "a refusal without a reason"
            assert len(rejection.reason) <= REASON_TEXT_LIMIT
            assert rejection.topic == topic
        self.pending += batch.lines + lineproto.quality_events(events)
        if len(self.pending) >= FLUSH_LINES:
            self.flush()
        whole = any(r.seq is None for r in batch.rejections)
        outcome = Outcome(len(batch.lines), len(batch.rejections), whole)
        self.tally["inputs"] += 1
        self.tally["stored" if outcome.stored and not outcome.refused else
                   "refused" if not outcome.stored else "partly stored"] += 1  # fmt: skip
        return outcome

    def flush(self) -> None:
        """InfluxDB must take every line we made: a refusal here is an escaping bug of ours,
        and the assertion names the line."""
        if not self.pending:
            return
        try:
            self.writer.write(lineproto.body(self.pending))
        except InfluxRejected:
            for line in self.pending:
                try:
                    self.writer.write(lineproto.body([line]))
                except InfluxRejected as exc:
                    raise AssertionError(f"InfluxDB refused {line!r}: {exc}") from exc
        self.pending = []

    def figures(self) -> str:
        seconds = time.monotonic() - self.started
        t = self.tally
        return (f"{t['inputs']:,} inputs in {seconds:.0f} s: {t['stored']:,} stored, "
                f"{t['partly stored']:,} partly stored, {t['refused']:,} refused with a reason, "
                f"0 crashes")  # fmt: skip

    def close(self) -> None:
        self.flush()
        self.writer.close()
        self.engine.dispose()
