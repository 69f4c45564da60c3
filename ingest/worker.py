"""The ingest worker: a persistent MQTT 5 session in, InfluxDB out, acknowledged only once stored.

What is durable and when (read this before changing the loop):
- A telemetry message is acknowledged (PUBACK) only at a checkpoint after its points were
  written to InfluxDB (HTTP 204) and its refused parts committed to the dead-letter store.
  Until then the broker keeps it in our persistent session and redelivers it after a crash or
  reconnect.
- The quality kernels' state never runs ahead of what was acknowledged. A checkpoint waits
  for the broker to confirm the quality events published so far, saves the kernels' state,
  and only then acknowledges the messages stored since the previous one. After a crash or a
  stop with a batch unstored, the worker starts from the last checkpoint and the broker
  redelivers everything after it, so every event those readings call for is raised again (at
  least once). Checkpoints come every `quality.snapshot_every_s`, and sooner when the held
  acknowledgements would fill the broker's window (`ingest.receive_maximum`).
- Redelivery is harmless: points are keyed by series and device timestamp, so a second write
  overwrites the first; the quality kernels ignore readings that are not newer than the last.
- paho calls `on_message` on its network thread; we only enqueue there. The broker cannot send
  more than Receive Maximum unacknowledged messages, which bounds the queue without a limit of
  ours; a checkpoint is taken before the held acks and a full batch could exceed it, so our
  own held acks cannot stall the stream.
- A PUBACK is only meaningful on the connection that received the message: message ids are
  reused by the next session. Every message carries the connection generation it arrived on,
  and an ack for an older generation is dropped (the broker redelivers that message anyway).
- If InfluxDB is down we keep the batch, back off and retry, and stop reading meanwhile.
- No message can stop the worker. Each is judged in its own guard (`ingest.batch`); a batch
  that fails as a whole is split until the culprit is alone; and each batch is marked in
  flight on disk first (`ingest.inflight`), so a message that kills the process is handled
  alone on redelivery, and set aside as a dead letter if it kills it again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import msgspec
import paho.mqtt.client as paho

from edge import mqtt
from edge.mqtt import Inbound
from edge.wire import (
    DeviceTopic,
    QualityMessage,
    SeqOnly,
    Stored,
    TopicKind,
    encode,
    quality_topic,
    stored_topic,
    subscription,
)
from ingest.batch import Batch, BatchBuilder, unforeseen
from ingest.deadletter import DeadLetterStore
from ingest.decode import REASON_TEXT_LIMIT, Rejection
from ingest.inflight import InFlight, Verdict, fingerprint
from ingest.quality import QualityCore
from ingest.registry_view import RegistryView
from ingest.settings import IngestSetup
from registry.directory import Directory
from timeseries import lineproto
from timeseries.events import QualityEvent
from timeseries.influx import InfluxRejected, InfluxUnavailable, Writer

_LOGGER = logging.getLogger(__name__)

# Long enough to ride out a worker outage of days: the broker keeps our queue meanwhile.
SESSION_EXPIRY_S = 14 * 24 * 3600
STATS_EVERY_S = 10.0
# How long a checkpoint waits for the broker to confirm our quality events before it gives up
# for now (the acks stay held; the next checkpoint tries again).
CONFIRM_WAIT_S = 5.0
# Logged once the subscriptions are confirmed; `tapsense up` and tests wait for it in the log.
READY_LINE = "ingest ready: subscriptions confirmed"
CULPRIT_REASON = (
    "set aside: the ingest worker died twice while handling this message, the second time "
    "handling it alone"
)


@dataclass(slots=True)
class Counters:
    messages: int = 0
    redelivered: int = 0
    points: int = 0
    rejected: int = 0
    batches: int = 0
    write_retries: int = 0
    stale_acks: int = 0


class IngestWorker:
    """Consumes telemetry for one venue shard until `stop` is set."""

    def __init__(
        self,
        setup: IngestSetup,
        writer: Writer,
        deadletters: DeadLetterStore,
        inflight: InFlight,
        quality: QualityCore,
        registry: RegistryView,
        subscribed: threading.Event | None = None,
    ) -> None:
        self._setup = setup
        self._ingest = setup.ingest
        self._writer = writer
        self._deadletters = deadletters
        self._inflight = inflight
        self._quality = quality
        self._registry = registry
        self._builder = BatchBuilder(self._ingest.max_payload_bytes, quality, registry)
        # Events from keg changes and cleanings, written as soon as the worker sees them.
        self._pending_events: list[QualityEvent] = []
        # Stored, waiting for the next checkpoint to be acknowledged; and the quality events
        # published since the last one, which the broker must confirm first.
        self._held: list[Inbound] = []
        self._published: list[paho.MQTTMessageInfo] = []
        self._changed = False  # the kernels saw something since the last checkpoint
        # False once the kernels ran over a batch that was not stored (a stop while InfluxDB
        # is down): then no checkpoint may be taken, and the last one stands.
        self._consistent = True
        self._queue: queue.Queue[Inbound] = queue.Queue()
        # Set by every new directory: keg changes and cleanings may have been recorded.
        self._tap_events_due = True
        self.counters = Counters()
        filters = [
            (subscription(TopicKind.TELEMETRY, self._ingest.venue_filter), 1),
            (subscription(TopicKind.STATUS, self._ingest.venue_filter), 1),
        ]
        self._session = mqtt.AckingSession(
            self._ingest.client_id, setup.mqtt, filters, self._queue.put, READY_LINE, subscribed
        )
        self._client = self._session.client
        self.connected = self._session.connected
        # Set once the broker confirmed our subscriptions: from then on nothing is missed.
        self.subscribed = self._session.subscribed

    # --- the worker's own thread ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self._session.start(
            session_expiry_s=SESSION_EXPIRY_S, receive_maximum=self._ingest.receive_maximum
        )
        last_stats = last_checkpoint = time.monotonic()
        every = self._setup.quality.snapshot_every_s
        # A checkpoint before the next batch whenever held acks plus a full batch would fill
        # the window the broker gives us.
        hold_at_most = self._ingest.receive_maximum - self._ingest.batch_max_messages
        self._registry.follow(self._directory_changed)
        try:
            while not stop.is_set():
                batch = self._collect(stop)
                if batch:
                    self._process(batch, stop)
                if self._registry.due():
                    self._registry.refresh()
                if self._tap_events_due:
                    self._apply_tap_events()
                if self._pending_events:
                    self._write_pending(stop)
                now = time.monotonic()
                if len(self._held) > hold_at_most or now - last_checkpoint >= every:
                    self._checkpoint()
                    last_checkpoint = now
                if now - last_stats >= STATS_EVERY_S:
                    self.log_stats()
                    last_stats = now
        finally:
            self._checkpoint()
            self._session.stop()
            self.log_stats()

    def _checkpoint(self) -> bool:
        """Save the kernels' state and acknowledge what was stored since the last checkpoint,
        once the broker has confirmed the quality events published since; whether it did."""
        if not self._consistent:
            _LOGGER.warning(
                "no checkpoint: a batch the kernels saw was not stored; after a restart the "
                "broker redelivers everything since the last one"
            )
            return False
        if self._pending_events:
            return False  # not yet written: they would be lost with a state that has them
        deadline = time.monotonic() + CONFIRM_WAIT_S
        while not all(info.is_published() for info in self._published):
            if not self.connected.is_set() or time.monotonic() > deadline:
                return False  # paho sends them again after a reconnect; try next time
            time.sleep(0.005)
        self._published = []
        if self._changed:
            self._quality.snapshot(self._setup.quality_snapshot_path)
            self._changed = False
        self._ack(self._held)
        self._confirm(self._held)
        self._held = []
        return True

    def _directory_changed(self, directory: Directory) -> None:
        """New thresholds at once (the next message may be the first of a new venue, admitted
        by this very directory); keg changes and cleanings after the batch in hand."""
        self._quality.reconfigure(directory)
        self._changed = True
        self._tap_events_due = True

    def _apply_tap_events(self) -> None:
        self._tap_events_due = False
        self._changed = True
        q = self._quality
        self._pending_events += q.apply(
            self._registry.tap_events_since(q.applied_keg, q.applied_cleaning)
        )

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
        """Handle a batch; messages the worker died on before are handled alone, or set aside
        when it died on one of them alone (see `ingest.inflight`)."""
        fresh: list[tuple[Inbound, bytes]] = []
        for message in messages:
            fp = fingerprint(message.topic, message.payload)
            verdict = self._inflight.verdict(fp)
            if verdict is Verdict.CULPRIT:
                _LOGGER.error("setting aside %s: the worker died handling it", message.topic)
                self._refuse_alone(message, fp, CULPRIT_REASON)
            elif verdict is Verdict.SUSPECT:
                _LOGGER.warning("handling %s alone: it was in flight when the worker died",
                                message.topic)  # fmt: skip
                self._handle([(message, fp)], stop, alone=True)
            else:
                fresh.append((message, fp))
        if fresh:
            self._handle(fresh, stop, alone=False)

    def _handle(
        self, marked: list[tuple[Inbound, bytes]], stop: threading.Event, *, alone: bool
    ) -> None:
        fps = [fp for _, fp in marked]
        messages = [message for message, _ in marked]
        self._inflight.mark(fps, alone=alone)
        try:
            batch = self._builder.build(messages, int(time.time() * 1000))
            events = self._builder.check_quality(batch)
            quality_lines = lineproto.quality_events(events)
        except Exception as exc:
            # Each message was judged in its own guard; this is the batch as a whole failing.
            if len(marked) == 1:
                _LOGGER.exception("refused %s: handling it failed", messages[0].topic[:200])
                self._refuse_alone(messages[0], fps[0], unforeseen(exc))
                return
            _LOGGER.exception("a batch of %d failed; splitting it to find why", len(marked))
            half = len(marked) // 2
            self._handle(marked[:half], stop, alone=alone)
            self._handle(marked[half:], stop, alone=alone)
            return
        self._changed = True
        inferred = self._quality.take_inferred()
        if self._store(batch, quality_lines, stop):
            self._deadletters.add(batch.rejections)
            self._publish(events)
            self._registry.record_inferred(inferred)
            self._held += messages
            self._count(messages, len(batch.lines) + len(quality_lines), len(batch.rejections))
        else:  # stopping with InfluxDB down: nothing acknowledged, all will be redelivered
            self._consistent = False
        # Either way the worker did not die on these messages.
        self._inflight.clear(fps)

    def _refuse_alone(self, message: Inbound, fp: bytes, reason: str) -> None:
        """Dead-letter one message whole, committed before it is acknowledged."""
        self._deadletters.add([Rejection(message.topic, reason, message.payload)])
        self._held.append(message)
        self._inflight.clear([fp])
        self._count([message], 0, 1)

    def _count(self, messages: list[Inbound], points: int, rejected: int) -> None:
        c = self.counters
        c.messages += len(messages)
        c.redelivered += sum(m.dup for m in messages)
        c.points += points
        c.rejected += rejected
        c.batches += 1

    def _store(self, batch: Batch, quality_lines: list[str], stop: threading.Event) -> bool:
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
                reason = f"InfluxDB refused: {exc}"[:REASON_TEXT_LIMIT]
                batch.rejections.append(Rejection(message.topic, reason, message.payload))
        return self._store_quality(quality_lines, stop)

    def _store_quality(self, lines: list[str], stop: threading.Event) -> bool:
        """Quality events; False if asked to stop before InfluxDB took them. Events InfluxDB
        refuses are no message's to dead-letter: logged, and not retried."""
        try:
            return self._write_retrying(lineproto.body(lines), stop)
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
                _LOGGER.warning("InfluxDB write failed (%s); retrying in %.1f s", exc, delay)
            except InfluxRejected:
                raise
            except Exception:
                # Not the messages' fault (they were judged already): keep them, never drop.
                _LOGGER.exception("InfluxDB write failed unexpectedly; retrying in %.1f s", delay)
            self.counters.write_retries += 1
            if stop.wait(delay):
                return False
            delay = min(delay * 2, self._ingest.retry_max_s)

    def _write_pending(self, stop: threading.Event) -> None:
        """Events from keg changes and cleanings, stored and published now rather than with
        whatever batch comes next (a quiet venue may send none for hours)."""
        events = self._pending_events
        if not self._store_quality(lineproto.quality_events(events), stop):
            self._consistent = False
            return
        self._pending_events = []
        self._publish(events)

    def _publish(self, events: list[QualityEvent]) -> None:
        """Quality events to the alerts service; QoS 1, paho resends them after a reconnect."""
        for e in events:
            message = QualityMessage(
                v=1, venue=e.venue, tap=e.tap, check=e.check, level=e.level, ts=e.ts,
                value=e.value, detail=e.detail,
            )  # fmt: skip
            info = self._client.publish(quality_topic(e.venue), encode(message), qos=1)
            self._published.append(info)

    def _confirm(self, messages: list[Inbound]) -> None:
        """Tell each device which of its telemetry messages are now stored (or set aside), so
        that its spool may let them go. At most once: a device that hears nothing sends the
        message again."""
        seqs: dict[tuple[str, str], list[int]] = {}
        for message in messages:
            try:
                topic = DeviceTopic.parse(message.topic)
                seq = msgspec.json.decode(message.payload, type=SeqOnly).seq
            except Exception:
                # Any payload may come here, hostile ones too (the batch judged them already,
                # and a RecursionError from a deep one must not stop the worker): no seq, no
                # confirmation.
                continue
            if topic.kind is TopicKind.TELEMETRY:
                seqs.setdefault((topic.venue, topic.device), []).append(seq)
        for (venue, device), stored in seqs.items():
            payload = encode(Stored(v=1, seqs=sorted(set(stored))))
            self._client.publish(stored_topic(venue, device), payload, qos=1)

    def _ack(self, messages: list[Inbound]) -> None:
        for message in messages:
            if not self._session.ack(message.generation, message.mid, message.qos):
                self.counters.stale_acks += 1
