"""A batch of received messages turned into points, refusals and quality checks. No I/O but
the registry view's look at whether an unknown sender was registered a moment ago.

The worker hands each batch of MQTT messages to a `BatchBuilder`: it decodes them (refusing
what is bad, with reasons), builds the InfluxDB lines, and runs the quality kernels over the
readings in arrival order. Writing, acknowledging and publishing are the worker's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from zoneinfo import ZoneInfo

import numpy as np

from edge.mqtt import Inbound
from edge.wire import TopicKind
from ingest.decode import (
    REASON_TEXT_LIMIT,
    Decoded,
    Rejection,
    decode_status,
    decode_telemetry,
)
from ingest.quality import QualityCore
from ingest.registry_view import RegistryView
from registry.hours import is_open
from timeseries import lineproto
from timeseries.events import QualityEvent

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """One batch's InfluxDB lines and refusals, and its readings as columns for the kernels."""

    lines: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    # Per message, the span of `lines` it owns: lets us retry message by message if refused.
    spans: list[tuple[Inbound, int, int]] = field(default_factory=list)
    taps: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    temps: list[float] = field(default_factory=list)
    pour_taps: list[int] = field(default_factory=list)
    pour_ts: list[int] = field(default_factory=list)
    pour_ml: list[float] = field(default_factory=list)
    pour_dur: list[int] = field(default_factory=list)
    pour_closed: list[bool] = field(default_factory=list)

    def lengths(self) -> tuple[int, ...]:
        """Where every column ends now, to undo a message that failed half-way."""
        return tuple(len(getattr(self, f.name)) for f in fields(self))

    def truncate(self, lengths: tuple[int, ...]) -> None:
        for f, length in zip(fields(self), lengths, strict=True):
            del getattr(self, f.name)[length:]


def unforeseen(exc: BaseException) -> str:
    """The reason recorded for a message whose handling raised what nobody foresaw."""
    return f"internal error while handling it: {type(exc).__name__}: {exc}"[:REASON_TEXT_LIMIT]


class BatchBuilder:
    """Decodes messages into a `Batch` and checks its readings' quality."""

    def __init__(
        self, max_payload_bytes: int, quality: QualityCore, registry: RegistryView
    ) -> None:
        self._max_payload = max_payload_bytes
        self._quality = quality
        self._registry = registry
        self._zones: dict[str, ZoneInfo] = {}

    def build(self, messages: list[Inbound], received_ms: int) -> Batch:
        """Every message ends up in the batch's lines or its refusals: whatever handling one
        raises (a decoder's unforeseen error, a registry entry nobody validated), that message
        alone is refused with the error as its reason and the others go on."""
        batch = Batch()
        for message in messages:
            start, before = len(batch.lines), batch.lengths()
            try:
                self._decode_into(batch, message, received_ms)
            except Exception as exc:
                batch.truncate(before)
                _LOGGER.exception("refused %s: handling it failed", message.topic[:200])
                batch.rejections.append(Rejection(message.topic, unforeseen(exc), message.payload))
            batch.spans.append((message, start, len(batch.lines)))
        return batch

    def check_quality(self, batch: Batch) -> list[QualityEvent]:
        """The batch's temperatures and pours, checked together in time order (so a pour is
        judged against the temperature at its own time, whatever the batching)."""
        events = self._quality.check(
            (
                np.array(batch.taps, np.int32),
                np.array(batch.ts, np.int64),
                np.array(batch.temps, np.float64),
            ),
            (
                np.array(batch.pour_taps, np.int32),
                np.array(batch.pour_ts, np.int64),
                np.array(batch.pour_ml, np.float64),
                np.array(batch.pour_dur, np.int64),
                np.array(batch.pour_closed, np.bool_),
            ),
        )
        for event in events:
            _LOGGER.info(
                "quality: %s/%s %s -> %s at %d (%g, %g)",
                event.venue,
                event.tap or "*",
                event.check,
                event.level,
                event.ts,
                event.value,
                event.detail,
            )
        return events

    def _decode_into(self, batch: Batch, message: Inbound, received_ms: int) -> None:
        if message.topic.endswith("/" + TopicKind.STATUS):
            self._status_into(batch, message, received_ms)
            return
        decoded = decode_telemetry(message.topic, message.payload, self._max_payload)
        if not isinstance(decoded, Rejection):
            decoded = self._registered(message, decoded.venue, decoded.device) or decoded
        if isinstance(decoded, Rejection):
            _LOGGER.warning("refused %s: %s", message.topic[:200], decoded.reason)
            batch.rejections.append(decoded)
            return
        self._readings_into(batch, decoded)

    def _registered(self, message: Inbound, venue: str, device: str) -> Rejection | None:
        """A refusal for a message from a venue or device the registry does not vouch for."""
        reason = self._registry.refusal(venue, device)
        return None if reason is None else Rejection(message.topic, reason, message.payload)

    def _readings_into(self, batch: Batch, decoded: Decoded) -> None:
        for rejection in decoded.rejections:
            _LOGGER.warning(
                "refused a reading from %s seq %d: %s",
                decoded.device,
                decoded.seq,
                rejection.reason,
            )
        batch.rejections.extend(decoded.rejections)
        batch.lines.extend(lineproto.temperatures(decoded.venue, decoded.seq, decoded.temps))
        batch.lines.extend(lineproto.pours(decoded.venue, decoded.seq, decoded.pours))
        tap_index = self._quality.tap_index
        for reading in decoded.temps:
            batch.taps.append(tap_index(decoded.venue, reading.tap))
            batch.ts.append(reading.ts)
            batch.temps.append(reading.c)
        for pour in decoded.pours:
            batch.pour_taps.append(tap_index(decoded.venue, pour.tap))
            batch.pour_ts.append(pour.ts)
            batch.pour_ml.append(pour.ml)
            batch.pour_dur.append(pour.dur_ms)
            batch.pour_closed.append(self._closed(decoded.venue, pour.ts - pour.dur_ms))

    def _closed(self, venue: str, ts_ms: int) -> bool:
        """Whether a pour that started at `ts_ms` started while the venue was closed."""
        config = self._registry.directory.get(venue)
        if config is None or config.hours is None:
            return False
        zone = self._zones.get(config.timezone)
        if zone is None:
            zone = self._zones[config.timezone] = ZoneInfo(config.timezone)
        return not is_open(config.hours, zone, ts_ms)

    def _status_into(self, batch: Batch, message: Inbound, received_ms: int) -> None:
        decoded = decode_status(message.topic, message.payload)
        if not isinstance(decoded, Rejection):
            decoded = self._registered(message, decoded[0].venue, decoded[0].device) or decoded
        if isinstance(decoded, Rejection):
            batch.rejections.append(decoded)
            return
        where, status = decoded
        # A status is an observation by the service, not a device reading: it carries no device
        # time, so arrival time is its timestamp.
        batch.lines.append(
            lineproto.device_status(where.venue, where.device, status.state, received_ms)
        )
