"""The edge agent: reads taps, spools readings as telemetry messages, publishes them with QoS 1.

Durability: readings are sealed into a spool message when the caller says so (every few
seconds) or sooner when a message is full; from then on they survive a crash and leave the
spool only on PUBACK. Readings not yet sealed live in memory, so a crash loses at most what
was read since the last seal.

Flow control: at most `max_inflight` messages wait for a PUBACK at once, and after an outage
the backlog goes out at no more than `catchup_messages_per_s`, so a venue coming back online
does not flood the broker. paho keeps the in-flight messages across a reconnect and resends
them itself (with the DUP flag); the spool resends the rest.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import paho.mqtt.client as paho
from msgspec.structs import replace

from edge import mqtt
from edge.drivers import TapDriver
from edge.pour import FlowCalibration, PourDetector
from edge.settings import MqttSettings
from edge.spool import DEFAULT_MAX_MESSAGES, Spool
from edge.wire import (
    MAX_READINGS_PER_MESSAGE,
    DeviceTopic,
    Pour,
    Status,
    Stored,
    Temperature,
    TopicKind,
    encode,
    stored_topic,
)

_LOGGER = logging.getLogger(__name__)

# CONNACK reasons that mean this login will not work until someone changes it.
LOGIN_REFUSED = {"Not authorized", "Bad user name or password", "Banned"}
LOGIN_RETRY_S = 300
HELD_MAX = 100_000  # readings kept in memory waiting for the clock (about a day of 8 taps)


class TokenBucket:
    """At most `rate` per second on average, and `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at: float | None = None

    def available(self, now: float) -> int:
        if self._at is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        return int(self._tokens)

    def take(self, count: int) -> None:
        self._tokens -= count


@dataclass(frozen=True, slots=True)
class AgentConfig:
    venue: str
    device: str
    spool_path: Path
    readings_per_message: int = 50
    max_inflight: int = 20
    catchup_messages_per_s: float = 50.0
    # Each sealed message fsynced: kept across a power cut (see edge/spool.py). The simulated
    # agents, which die with the server they run on, turn it off.
    spool_durable: bool = True
    spool_max_messages: int = DEFAULT_MAX_MESSAGES
    # End to end: a message leaves the spool only once ingest says it stored it (`Stored` on
    # the device's downlink), not at the broker's PUBACK, which means "in the broker's
    # memory"; unconfirmed ones go again after `confirm_timeout_s` or a reconnect.
    confirm_stored: bool = False
    confirm_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        DeviceTopic(self.venue, self.device, TopicKind.TELEMETRY)  # validates the ids
        if not 1 <= self.readings_per_message <= MAX_READINGS_PER_MESSAGE:
            raise ValueError(
                f"readings_per_message must be 1..{MAX_READINGS_PER_MESSAGE}, "
                f"not {self.readings_per_message}"
            )
        if self.max_inflight < 1 or self.catchup_messages_per_s <= 0:
            raise ValueError("max_inflight and catchup_messages_per_s must be positive")
        if self.spool_max_messages < 1:
            raise ValueError("spool_max_messages must be positive")


@dataclass(slots=True)
class AgentCounters:
    sealed: int = 0
    published: int = 0
    acknowledged: int = 0
    refused: int = 0  # PUBACKs with a failure reason (MQTT 5): kept in the spool
    readings: int = 0
    confirmed: int = 0  # stored by ingest, by its word (with `confirm_stored`)
    held_dropped: int = 0  # held too long for a clock that never came
    resent: int = 0  # sent again: acknowledged by the broker, but not confirmed in time


class EdgeAgent:
    """One venue device: its spool, its MQTT session and its taps' pour detectors."""

    def __init__(
        self,
        config: AgentConfig,
        mqtt_settings: MqttSettings,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        observer: Callable[[str, Temperature | Pour], None] | None = None,
        network: Callable[[list[tuple[int, bytes]]], list[tuple[int, bytes]]] | None = None,
    ) -> None:
        """`observer` sees every reading as it is recorded (the simulators' ground truth);
        `network` may duplicate or reorder each batch of messages before it is published (the
        simulators' network faults)."""
        self.config = config
        self._observer = observer
        self._network = network
        self._mqtt_settings = mqtt_settings
        self._clock_ms = clock_ms
        self.spool = Spool(config.spool_path, durable=config.spool_durable,
                           max_messages=config.spool_max_messages)  # fmt: skip
        self.counters = AgentCounters()
        self._temps: list[Temperature] = []
        self._pours: list[Pour] = []
        self._detectors: dict[str, PourDetector] = {}
        self._inflight: dict[int, int] = {}  # paho mid -> spool seq
        self._highest_sent = 0
        # (mid, None) for a PUBACK that accepted the message, (mid, reason) for one that did not.
        self._acked: queue.SimpleQueue[tuple[int, str | None]] = queue.SimpleQueue()
        # With `confirm_stored`: broker-acknowledged seq -> when; and what ingest confirmed.
        self._awaiting: dict[int, float] = {}
        self._stored: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self._stored_topic = stored_topic(config.venue, config.device)
        self._catchup = TokenBucket(config.catchup_messages_per_s, burst=config.max_inflight)
        self.connected = threading.Event()
        self.refused: str | None = None  # why the broker refused our login, while it does
        # While the clock is not set: readings stay in memory with monotonic times (`restamp`).
        self.holding = False
        self.last_puback_ms: int | None = None
        self._telemetry = str(DeviceTopic(config.venue, config.device, TopicKind.TELEMETRY))
        self._status = str(DeviceTopic(config.venue, config.device, TopicKind.STATUS))
        self._client = mqtt.new_client(
            f"tapsense-edge-{config.venue}-{config.device}", mqtt_settings
        )
        self._client.will_set(self._status, encode(Status(v=1, state="offline")), 1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    # --- readings ---------------------------------------------------------------------------

    def record_temperature(self, tap: str, ts_ms: int, c: float) -> None:
        reading = Temperature(tap=tap, ts=ts_ms, c=c)
        self._temps.append(reading)
        if self._observer is not None:
            self._observer(self.config.venue, reading)
        self._seal_full()

    def record_pour(self, tap: str, ts_ms: int, ml: float, duration_ms: int) -> None:
        reading = Pour(tap=tap, ts=ts_ms, ml=ml, dur_ms=duration_ms)
        self._pours.append(reading)
        if self._observer is not None:
            self._observer(self.config.venue, reading)
        self._seal_full()

    def sample_temperatures(self, taps: Sequence[TapDriver]) -> None:
        """Read every tap's probe once."""
        now = self._clock_ms()
        for driver in taps:
            c = driver.temperature_c(now)
            if c is not None:
                self.record_temperature(driver.tap, now, c)

    def sample_flow(self, driver: TapDriver, calibration: FlowCalibration) -> None:
        """Read one tap's flow meter into its pour detector; record a pour that ended."""
        now = self._clock_ms()
        detector = self._detectors.setdefault(driver.tap, PourDetector(calibration))
        pour = detector.feed(now, driver.ticks(now))
        if pour is not None:
            self.record_pour(driver.tap, pour.end_ms, round(pour.ml, 1), pour.duration_ms)

    def _seal_full(self) -> None:
        if self.holding:
            excess = len(self._temps) + len(self._pours) - HELD_MAX
            if excess > 0:  # no clock for days: the oldest go, counted
                self._temps = self._temps[excess:]
                self.counters.held_dropped += excess
            return
        if len(self._temps) + len(self._pours) >= self.config.readings_per_message:
            self.seal()

    def restamp(self, offset_ms: int) -> int:
        """The clock is set: readings held with monotonic times get real ones (`+ offset_ms`),
        and sealing resumes; how many were held."""
        self._temps = [replace(r, ts=r.ts + offset_ms) for r in self._temps]
        self._pours = [replace(r, ts=r.ts + offset_ms) for r in self._pours]
        self.holding = False
        return len(self._temps) + len(self._pours)

    def seal(self) -> None:
        """Move the readings held in memory into the spool as one message."""
        if self.holding or not (self._temps or self._pours):
            return
        self.spool.add(self._temps, self._pours)
        self.counters.sealed += 1
        self.counters.readings += len(self._temps) + len(self._pours)
        self._temps, self._pours = [], []

    # --- MQTT -------------------------------------------------------------------------------

    def connect(self) -> None:
        m = self._mqtt_settings
        self._client.connect_async(m.host, m.port, m.keepalive_s)
        self._client.loop_start()

    def _on_connect(
        self, client: paho.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            self.refused = str(reason)
            if str(reason) in LOGIN_REFUSED:
                # Revoked, or a wrong password: hammering the broker will not mend it.
                client.reconnect_delay_set(LOGIN_RETRY_S, LOGIN_RETRY_S)
                _LOGGER.error("%s/%s: the broker refused this device's login (%s): revoked, or "
                              "a wrong password in the config; trying again every %d s",
                              self.config.venue, self.config.device, reason,
                              LOGIN_RETRY_S)  # fmt: skip
                return
            _LOGGER.error("%s: broker refused the connection: %s", self.config.device, reason)
            return
        self.refused = None
        mqtt.back_off(client)
        if self.config.confirm_stored:
            client.subscribe(self._stored_topic, qos=1)
            self._stored.put([])  # a reconnect: whatever awaits confirmation goes again now
        client.publish(self._status, encode(Status(v=1, state="online")), 1, retain=True)
        self.connected.set()
        _LOGGER.info(
            "%s/%s online, %d messages spooled",
            self.config.venue,
            self.config.device,
            self.spool.depth(),
        )

    def _on_disconnect(
        self, _c: paho.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        self.connected.clear()
        level = logging.WARNING if getattr(reason, "is_failure", True) else logging.INFO
        _LOGGER.log(
            level, "%s/%s offline (%s); spooling", self.config.venue, self.config.device, reason
        )

    def _on_publish(
        self, _c: paho.Client, _u: object, mid: int, reason: object, _p: object
    ) -> None:
        # MQTT 5 says when the broker did not take a message (0x87 Not authorized: publishing
        # where the ACL forbids); MQTT 3.1.1 would PUBACK it and drop it silently.
        self._acked.put((mid, str(reason) if getattr(reason, "is_failure", False) else None))

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        try:
            stored = msgspec.json.decode(message.payload, type=Stored)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            _LOGGER.warning("%s: ignoring a malformed confirmation: %s", self.config.device, exc)
            return
        self._stored.put(stored.seqs)

    def _take_confirmations(self) -> list[int]:
        """Seqs ingest confirmed; after a reconnect, everything awaiting is due again."""
        confirmed: list[int] = []
        while True:
            try:
                seqs = self._stored.get_nowait()
            except queue.Empty:
                return confirmed
            if not seqs:
                self._awaiting = dict.fromkeys(self._awaiting, 0.0)
            for seq in seqs:
                self._awaiting.pop(seq, None)
                confirmed.append(seq)

    def pump(self) -> int:
        """Drop acknowledged messages from the spool and publish more; returns how many sent."""
        done = []
        while True:
            try:
                mid, refusal = self._acked.get_nowait()
            except queue.Empty:
                break
            seq = self._inflight.pop(mid, None)
            if seq is None:
                continue
            self.last_puback_ms = int(time.time() * 1000)
            if refusal is None and self.config.confirm_stored:
                self._awaiting[seq] = time.monotonic()
                continue
            if refusal is None:
                done.append(seq)
                continue
            self.counters.refused += 1
            # Kept: the spool sends it again when the agent next starts (after the login or
            # config has been mended); resending now would only be refused again.
            _LOGGER.error("%s: the broker refused message %d on %s (%s); kept in the spool",
                          self.config.device, seq, self._telemetry, refusal)  # fmt: skip
        self.counters.acknowledged += len(done)
        if self.config.confirm_stored:
            done = self._take_confirmations()
            self.counters.confirmed += len(done)
        self.spool.remove(done)
        if not self.connected.is_set():
            return 0
        if self.config.confirm_stored:
            self._resend_unconfirmed()
        room = min(
            self.config.max_inflight - len(self._inflight),
            self._catchup.available(time.monotonic()),
        )
        if room <= 0:
            return 0
        sent = 0
        batch = self.spool.pending(self._highest_sent, room)
        if self._network is not None:
            batch = self._network(batch)
        for seq, payload in batch:
            info = self._client.publish(self._telemetry, payload, qos=1)
            # NO_CONN: the connection dropped since we looked; paho keeps the message queued
            # and sends it after reconnecting, so it is in flight all the same.
            if info.rc != paho.MQTT_ERR_NO_CONN:
                mqtt.check(info.rc, f"publish seq {seq}")
            self._inflight[info.mid] = seq
            self._highest_sent = max(self._highest_sent, seq)
            sent += 1
        self._catchup.take(sent)
        self.counters.published += sent
        return sent

    def _resend_unconfirmed(self) -> None:
        """Messages the broker took but ingest has not confirmed in time: again (the broker
        may have lost them: its PUBACK means "in memory")."""
        due_before = time.monotonic() - self.config.confirm_timeout_s
        due = [seq for seq, at in self._awaiting.items() if at <= due_before]
        picked = due[: max(self.config.max_inflight - len(self._inflight), 0)]
        found = dict(self.spool.get(picked))
        for seq in picked:
            del self._awaiting[seq]
            payload = found.get(seq)
            if payload is None:
                continue  # confirmed before its PUBACK was seen, or dropped for room
            info = self._client.publish(self._telemetry, payload, qos=1)
            if info.rc != paho.MQTT_ERR_NO_CONN:
                mqtt.check(info.rc, f"publish seq {seq} again")
            self._inflight[info.mid] = seq
            self.counters.resent += 1

    @property
    def unconfirmed(self) -> int:
        """Messages the broker acknowledged that ingest has not confirmed yet."""
        return len(self._awaiting)

    def drained(self) -> bool:
        """Every sealed message acknowledged by the broker."""
        return not self._temps and not self._pours and self.spool.depth() == 0

    def close(self, *, announce_offline: bool = True) -> None:
        """Leave cleanly: say offline (a clean disconnect does not fire the will)."""
        if announce_offline and self.connected.is_set():
            info = self._client.publish(
                self._status, encode(Status(v=1, state="offline")), 1, retain=True
            )
            info.wait_for_publish(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()
        self.spool.close()
