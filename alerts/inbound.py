"""What the alerts service hears, judged into signals: quality events from ingest and devices'
presence. Pure: bytes and a topic in, a `Signal` out, or a `ValueError` (or a decoding error)
that says why not; nothing here touches the broker or the database."""

from __future__ import annotations

import re

import msgspec

from alerts.lifecycle import DEVICE_OFFLINE, Signal
from edge.mqtt import Inbound
from edge.wire import (
    ID_PATTERN,
    QUALITY_TOPIC_ROOT,
    TS_MAX_MS,
    TS_MIN_MS,
    DeviceTopic,
    QualityMessage,
    Status,
    TopicKind,
    quality_topic,
)
from timeseries.events import CHECKS, LEVELS, Level

_QUALITY = msgspec.json.Decoder(QualityMessage)
_STATUS = msgspec.json.Decoder(Status)
_ID = re.compile(ID_PATTERN)


def signal_of(message: Inbound) -> Signal:
    """The signal a message carries; `ValueError` says why a message carries none."""
    if message.topic.startswith(QUALITY_TOPIC_ROOT + "/"):
        event = _QUALITY.decode(message.payload)
        if event.check not in CHECKS or event.level not in LEVELS:
            raise ValueError(f"unknown check {event.check!r} or level {event.level!r}")
        if not _ID.match(event.venue) or (event.tap is not None and not _ID.match(event.tap)):
            raise ValueError(f"venue or tap is not an id: {event.venue[:80]!r}, {event.tap!r:.80}")
        if not TS_MIN_MS <= event.ts < TS_MAX_MS:
            raise ValueError(f"time {event.ts} is not a device time")
        if message.topic != quality_topic(event.venue):
            raise ValueError(f"event of {event.venue!r} on {message.topic!r}")
        return Signal(
            event.venue,
            event.tap or "",
            event.check,
            Level(event.level),
            event.ts,
            event.value,
            event.detail,
        )
    topic = DeviceTopic.parse(message.topic)
    if topic.kind is not TopicKind.STATUS:
        raise ValueError(f"not a status topic: {message.topic!r}")
    status = _STATUS.decode(message.payload)
    level = Level.WARNING if status.state == "offline" else Level.OK
    # A status carries no time of its own: it is as new as its arrival.
    return Signal(topic.venue, topic.device, DEVICE_OFFLINE, level, message.received_ms)
