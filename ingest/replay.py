"""Replaying dead letters after a fix: through the same decoding and registry checks as ingest,
written to InfluxDB, and marked replayed.

The usual case is a venue or device registered after its first messages were refused. Nothing
is stored twice: a point's identity is its series and the device's timestamp, so a replayed
reading that was already stored overwrites itself, and a dead letter marked replayed is left
out of later replays. A dead letter refused again keeps its row (and its first reason); the
new reason is reported. Replayed readings are late by definition and do not move the quality
state (the worker's kernels ignore readings that are not newer than their tap's last one).

A refused reading was stored alone (its message's other readings were kept): it is replayed
inside an envelope of its own, with the message's `seq`, as a temperature or a pour according
to the JSON path in its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from edge.mqtt import Inbound
from edge.wire import TopicKind
from ingest.batch import BatchBuilder
from ingest.deadletter import DeadLetter
from ingest.decode import REASON_TEXT_LIMIT
from ingest.quality import QualityCore
from ingest.registry_view import RegistryView
from timeseries import lineproto
from timeseries.influx import InfluxRejected, Writer

_READING_PATH = re.compile(r"`\$\.(temps|pours)\[\d+\]")


@dataclass(slots=True)
class Replayed:
    """What a replay did, per dead letter id."""

    stored: list[int] = field(default_factory=list)  # written (or already there): done
    refused: dict[int, str] = field(default_factory=dict)  # refused again, with the new reason


def as_message(letter: DeadLetter) -> bytes:
    """The payload to decode: the message itself, or a refused reading in an envelope."""
    found = _READING_PATH.search(letter.reason)
    if found is None or letter.topic.endswith("/" + TopicKind.STATUS):
        return bytes(letter.payload)
    seq = letter.seq if letter.seq is not None else 0
    return b'{"v":1,"seq":%d,"%s":[%s]}' % (seq, found[1].encode(), bytes(letter.payload))


def replay(
    letters: list[DeadLetter], registry: RegistryView, quality: QualityCore, writer: Writer,
    max_payload_bytes: int,
) -> Replayed:  # fmt: skip
    """Each dead letter handled alone (its own write), so one refusal never holds back another.
    `InfluxUnavailable` is raised: nothing is marked then, and the replay can run again."""
    builder = BatchBuilder(max_payload_bytes, quality, registry)
    done = Replayed()
    for letter in letters:
        inbound = Inbound(0, 0, 1, letter.topic, as_message(letter), False, letter.received_ms)
        batch = builder.build([inbound], letter.received_ms)
        if batch.rejections:
            reasons = "; ".join(r.reason for r in batch.rejections)
            done.refused[letter.id] = reasons[:REASON_TEXT_LIMIT]
            continue
        try:
            writer.write(lineproto.body(batch.lines))
        except InfluxRejected as exc:
            done.refused[letter.id] = f"InfluxDB refused: {exc}"[:REASON_TEXT_LIMIT]
            continue
        done.stored.append(letter.id)
    return done
