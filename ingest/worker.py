"""The ingest worker: a persistent MQTT 5 session in, InfluxDB out, acknowledged only once stored.

What is durable and when (read this before changing the loop):
- A telemetry message is acknowledged (PUBACK) only after its points were written to InfluxDB
  (HTTP 204) and its refused parts committed to the dead-letter store. Until then the broker
  keeps it in our persistent session and redelivers it after a crash or reconnect.
- Redelivery is harmless: points are keyed by series and device timestamp, so a second write
  overwrites the first; the quality kernels ignore readings that are not newer than the last.
- paho calls `on_message` on its network thread; we only enqueue there. The broker cannot send
  more than Receive Maximum unacknowledged messages, which bounds the queue without a limit of
  ours, and a batch never holds more than that, so our own held acks cannot stall the stream.
- A PUBACK is only meaningful on the connection that received the message: message ids are
  reused by the next session. Every message carries the connection generation it arrived on,
  and an ack for an older generation is dropped (the broker redelivers that message anyway).
- If InfluxDB is down we keep the batch, back off and retry, and stop reading meanwhile.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import paho.mqtt.client as paho

from edge import mqtt
from edge.wire import (
    DeviceTopic,
    QualityMessage,
    Status,
    TopicKind,
    WireError,
    encode,
    quality_topic,
    subscription,
)
from ingest import lineproto
from ingest.deadletter import DeadLetterStore
from ingest.decode import Decoded, Rejection, decode_telemetry
from ingest.hours import is_open
from ingest.influx import InfluxRejected, InfluxUnavailable, Writer
from ingest.quality import QualityCore, QualityEvent
from stack.settings import Settings

_LOGGER = logging.getLogger(__name__)

# Long enough to ride out a worker outage of days: the broker keeps our queue meanwhile.
SESSION_EXPIRY_S = 14 * 24 * 3600
STATS_EVERY_S = 10.0
# Logged once the subscriptions are confirmed; `tapsense up` and tests wait for it in the log.
READY_LINE = "ingest ready: subscriptions confirmed"
_STATUS = msgspec.json.Decoder(Status)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as received, tagged with the connection it came on."""

    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    dup: bool


@dataclass(slots=True)
class Counters:
    messages: int = 0
    redelivered: int = 0
    points: int = 0
    rejected: int = 0
    batches: int = 0
    write_retries: int = 0
    stale_acks: int = 0


@dataclass(slots=True)
class _Batch:
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


class IngestWorker:
    """Consumes telemetry for one venue shard until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        writer: Writer,
        deadletters: DeadLetterStore,
        quality: QualityCore,
    ) -> None:
        self._settings = settings
        self._ingest = settings.ingest
        self._writer = writer
        self._deadletters = deadletters
        self._quality = quality
        self._zones: dict[str, ZoneInfo] = {}
        self._queue: queue.Queue[Inbound] = queue.Queue()
        self._ack_lock = threading.Lock()
        self._generation = 0
        self.connected = threading.Event()
        # Set once the broker confirmed our subscriptions: from then on nothing is missed.
        self.subscribed = threading.Event()
        self.counters = Counters()
        self._client = mqtt.new_client(self._ingest.client_id, settings.mqtt, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # --- paho's network thread: never block here -------------------------------------------

    def _on_connect(
        self, client: paho.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            _LOGGER.error("broker refused the connection: %s", reason)
            return
        with self._ack_lock:
            self._generation += 1
        filters = [
            (subscription(TopicKind.TELEMETRY, self._ingest.venue_filter), 1),
            (subscription(TopicKind.STATUS, self._ingest.venue_filter), 1),
        ]
        client.subscribe(filters)
        self.connected.set()
        _LOGGER.info(
            "connected to the broker (session %d), subscribed to %s",
            self._generation,
            ", ".join(f for f, _ in filters),
        )

    def _on_subscribe(
        self, _c: paho.Client, _u: object, _mid: int, reasons: list, _p: object
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            _LOGGER.error("broker refused our subscriptions: %s", failed)
            return
        self.subscribed.set()
        _LOGGER.info("%s", READY_LINE)

    def _on_disconnect(
        self, _c: paho.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        with self._ack_lock:
            self._generation += 1
        self.connected.clear()
        _LOGGER.log(
            logging.WARNING if getattr(reason, "is_failure", True) else logging.INFO,
            "disconnected from the broker (%s); unacknowledged messages will be redelivered",
            reason,
        )

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        self._queue.put(
            Inbound(
                self._generation,
                message.mid,
                message.qos,
                message.topic,
                bytes(message.payload),
                bool(message.dup),
            )
        )

    # --- the worker's own thread ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        m = self._settings.mqtt
        props = mqtt.connect_properties(
            session_expiry_s=SESSION_EXPIRY_S, receive_maximum=self._ingest.receive_maximum
        )
        self._client.connect_async(
            m.host, m.port, m.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        last_stats = last_snapshot = time.monotonic()
        every = self._settings.quality.snapshot_every_s
        try:
            while not stop.is_set():
                batch = self._collect(stop)
                if batch:
                    self._process(batch, stop)
                now = time.monotonic()
                if now - last_stats >= STATS_EVERY_S:
                    self.log_stats()
                    last_stats = now
                if now - last_snapshot >= every:
                    self._quality.snapshot(self._settings.quality_snapshot_path)
                    last_snapshot = now
        finally:
            self._quality.snapshot(self._settings.quality_snapshot_path)
            self._client.disconnect()
            self._client.loop_stop()
            self.log_stats()

    def log_stats(self) -> None:
        c = self.counters
        _LOGGER.info(
            "ingest: %d messages (%d redelivered), %d points written, %d refused, "
            "%d batches, %d write retries, %d acks dropped after a reconnect",
            c.messages,
            c.redelivered,
            c.points,
            c.rejected,
            c.batches,
            c.write_retries,
            c.stale_acks,
        )

    def _collect(self, stop: threading.Event) -> list[Inbound]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._ingest.batch_linger_ms / 1000
        while len(batch) < self._ingest.batch_max_messages and not stop.is_set():
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                break
        return batch

    def _process(self, messages: list[Inbound], stop: threading.Event) -> None:
        batch = _Batch()
        received_ms = int(time.time() * 1000)
        for message in messages:
            start = len(batch.lines)
            self._decode_into(batch, message, received_ms)
            batch.spans.append((message, start, len(batch.lines)))
        # Stated rule: within a batch temperatures are checked before pours, so a pour's
        # temperature is the latest one checked when the pour is.
        events = self._quality.temperatures(
            np.array(batch.taps, np.int32),
            np.array(batch.ts, np.int64),
            np.array(batch.temps, np.float64),
        )
        events += self._quality.pours(
            np.array(batch.pour_taps, np.int32),
            np.array(batch.pour_ts, np.int64),
            np.array(batch.pour_ml, np.float64),
            np.array(batch.pour_dur, np.int64),
            np.array(batch.pour_closed, np.bool_),
        )
        quality_lines = lineproto.quality_events(events)
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
        if not self._store(batch, quality_lines, stop):
            return  # stopping with InfluxDB down: nothing acknowledged, all will be redelivered
        self._deadletters.add(batch.rejections)
        self._publish(events)
        self._ack(messages)
        c = self.counters
        c.messages += len(messages)
        c.redelivered += sum(m.dup for m in messages)
        c.points += len(batch.lines) + len(quality_lines)
        c.rejected += len(batch.rejections)
        c.batches += 1

    def _decode_into(self, batch: _Batch, message: Inbound, received_ms: int) -> None:
        if message.topic.endswith("/" + TopicKind.STATUS):
            self._status_into(batch, message, received_ms)
            return
        decoded = decode_telemetry(message.topic, message.payload, self._ingest.max_payload_bytes)
        if isinstance(decoded, Rejection):
            _LOGGER.warning("refused %s: %s", message.topic[:200], decoded.reason)
            batch.rejections.append(decoded)
            return
        self._readings_into(batch, decoded)

    def _readings_into(self, batch: _Batch, decoded: Decoded) -> None:
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
        config = self._settings.venues.get(venue)
        if config is None or config.hours is None:
            return False
        zone = self._zones.get(config.timezone)
        if zone is None:
            zone = self._zones[config.timezone] = ZoneInfo(config.timezone)
        return not is_open(cast("Mapping[str, str]", config.hours), zone, ts_ms)

    def _status_into(self, batch: _Batch, message: Inbound, received_ms: int) -> None:
        try:
            where = DeviceTopic.parse(message.topic)
            status = _STATUS.decode(message.payload)
        except (WireError, msgspec.DecodeError, RecursionError) as exc:
            batch.rejections.append(
                Rejection(message.topic, f"bad status: {exc}"[:300], message.payload)
            )
            return
        # A status is an observation by the service, not a device reading: it carries no device
        # time, so arrival time is its timestamp.
        batch.lines.append(
            lineproto.device_status(where.venue, where.device, status.state, received_ms)
        )

    def _store(self, batch: _Batch, quality_lines: list[str], stop: threading.Event) -> bool:
        """Write the batch; False if asked to stop before InfluxDB took it."""
        try:
            return self._write_retrying(lineproto.body(batch.lines + quality_lines), stop)
        except InfluxRejected as exc:
            _LOGGER.warning("InfluxDB refused a batch (%s); writing it message by message", exc)
        for message, start, stop_at in batch.spans:
            if start == stop_at:
                continue
            try:
                if not self._write_retrying(lineproto.body(batch.lines[start:stop_at]), stop):
                    return False
            except InfluxRejected as exc:
                batch.rejections.append(
                    Rejection(message.topic, f"InfluxDB refused: {exc}"[:300], message.payload)
                )
        try:
            return self._write_retrying(lineproto.body(quality_lines), stop)
        except InfluxRejected as exc:
            _LOGGER.error("InfluxDB refused quality events: %s", exc)
            return True

    def _write_retrying(self, body: bytes, stop: threading.Event) -> bool:
        if not body:
            return True
        delay = self._ingest.retry_initial_s
        while True:
            try:
                self._writer.write(body)
                return True
            except InfluxUnavailable as exc:
                self.counters.write_retries += 1
                _LOGGER.warning("InfluxDB write failed (%s); retrying in %.1f s", exc, delay)
            if stop.wait(delay):
                return False
            delay = min(delay * 2, self._ingest.retry_max_s)

    def _publish(self, events: list[QualityEvent]) -> None:
        """Quality events to the alerts service; QoS 1, paho resends them after a reconnect."""
        for e in events:
            message = QualityMessage(
                v=1, venue=e.venue, tap=e.tap, check=e.check, level=e.level, ts=e.ts,
                value=e.value, detail=e.detail,
            )  # fmt: skip
            self._client.publish(quality_topic(e.venue), encode(message), qos=1)

    def _ack(self, messages: list[Inbound]) -> None:
        with self._ack_lock:
            for message in messages:
                if message.qos == 0:
                    continue
                if message.generation != self._generation:
                    self.counters.stale_acks += 1
                    continue
                self._client.ack(message.mid, message.qos)
