"""The alerts service: quality events and device presence in, alerts and notifications out.

What is durable and when:
- Quality events (`tapsense/internal/v1/quality/+`) and device status come through a shared
  subscription of a persistent MQTT 5 session at QoS 1. A message is acknowledged only after
  the transaction holding its effect (the alert's change, its history, the change to tell)
  committed; a service killed before that gets it again, and the check's newest event time
  (`check_states`) makes the second time change nothing.
- Two services may run at once: the shared subscription gives each message to one of them,
  and the database makes every step happen once (`alerts.store`).
- Notifications are rows in the outbox before anything is sent (`alerts.outbox`), and are
  sent by a thread of their own (`alerts.delivery`), so a slow webhook never holds back
  events.
- On its clock (`alerts.tick_s`) the service resolves what recovered, groups what is to be
  told, publishes each changed venue's alerts to its display (`alerts.display`), and every
  `alerts.silent_every_s` asks InfluxDB which open venues went silent (`alerts.silence`).
- paho calls `on_message` on its network thread: messages are only queued there.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import replace
from functools import partial

import msgspec
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from alerts import display, outbox, silence, store
from alerts.delivery import Deliverer
from alerts.inbound import signal_of
from alerts.lifecycle import VENUE_SILENT
from alerts.settings import AlertsSetup
from alerts.store import now_ms
from coupons import display as coupon_display
from edge import mqtt
from edge.mqtt import Inbound
from edge.wire import (
    QUALITY_TOPIC_ROOT,
    TopicKind,
    WireError,
    alerts_topic,
    coupons_topic,
    encode,
    subscription,
)
from registry import access
from registry.alert_models import Alert
from registry.db import open_registry, transaction
from registry.models import Venue
from timeseries.events import Level
from timeseries.influx import InfluxError, InfluxQL

_LOGGER = logging.getLogger(__name__)

SESSION_EXPIRY_S = 14 * 24 * 3600
RECEIVE_MAXIMUM = 100
READY_LINE = "alerts ready: subscriptions confirmed"


class AlertsService:
    def __init__(self, setup: AlertsSetup, engine: Engine) -> None:
        self._setup = setup
        self._engine = engine
        self._queue: queue.Queue[Inbound] = queue.Queue()
        self._written = threading.Event()  # new notifications: the sender need not wait a tick
        self._shown = 0  # the newest alert change the venues' displays were told of
        self._coupons_shown = 0  # the newest coupon launch or redemption they were told of
        self._refresh_at = 0.0
        self._influx = InfluxQL(setup.influx)
        self._silence_at = 0.0
        group = setup.alerts.share_group
        filters = [
            (f"$share/{group}/{QUALITY_TOPIC_ROOT}/+", 1),
            (f"$share/{group}/{subscription(TopicKind.STATUS)}", 1),
        ]
        self._session = mqtt.AckingSession(
            setup.alerts.client_id, setup.mqtt, filters, self._queue.put, READY_LINE
        )
        self.subscribed = self._session.subscribed

    def run(self, stop: threading.Event) -> None:
        self._session.start(session_expiry_s=SESSION_EXPIRY_S, receive_maximum=RECEIVE_MAXIMUM)
        sender = threading.Thread(target=self._deliver, args=(stop,), name="alerts-delivery")
        sender.start()
        tick = self._setup.alerts.tick_s
        next_tick = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    message = self._queue.get(timeout=tick)
                except queue.Empty:
                    message = None
                if message is not None:
                    self._handle(message)
                if time.monotonic() >= next_tick:
                    self._on_clock()
                    next_tick = time.monotonic() + tick
        finally:
            stop.set()  # also when the loop ended by an error: the sender must end with it
            sender.join()
            self._influx.close()
            self._session.stop()

    def _handle(self, message: Inbound) -> None:
        try:
            signal = signal_of(message)
        except (ValueError, msgspec.DecodeError, WireError, RecursionError) as exc:
            _LOGGER.warning("ignored a message on %s: %s", message.topic[:200], exc)
            self._ack(message)
            return
        try:
            step = store.retrying(self._engine, lambda db: store.record(db, signal, now_ms()))
        except OperationalError:
            # The database is gone: stop unacknowledged; the broker gives the event again to
            # whoever runs next (the supervisor, systemd), after the database is back.
            raise
        except Exception:
            # Never a message that stops the service every time it comes back.
            _LOGGER.exception("could not apply %s; set aside", signal)
        else:
            if step is not None:
                _LOGGER.info(
                    "%s %s/%s %s: %s",
                    step.change,
                    signal.venue,
                    signal.subject or "-",
                    signal.check,
                    step.severity,
                )
        self._ack(message)

    def _ack(self, message: Inbound) -> None:
        self._session.ack(message.generation, message.mid, message.qos)

    def _on_clock(self) -> None:
        hold = self._setup.alerts.resolve_hold_s
        store.retrying(self._engine, lambda db: store.sweep(db, now_ms(), hold))
        if store.retrying(self._engine, lambda db: outbox.group(db, now_ms())):
            self._written.set()
        self._show()
        if self._setup.alerts.silent_after_s and time.monotonic() >= self._silence_at:
            self._silence_at = time.monotonic() + self._setup.alerts.silent_every_s
            self._check_silence()

    def _check_silence(self) -> None:
        """Venues open now with no reading for `silent_after_s`: an alert; readings again: ok."""
        try:
            last_seen = silence.last_readings(self._influx)
        except InfluxError as exc:
            _LOGGER.warning("cannot tell which venues are silent: %s", exc)
            return
        with transaction(self._engine) as db:
            venues = list(db.scalars(select(Venue).where(Venue.id.in_(list(last_seen)))))
            silent_now = set(db.scalars(select(Alert.venue_id).where(
                Alert.check == VENUE_SILENT, Alert.state != "resolved")))  # fmt: skip
        signals = silence.silence_signals(last_seen, venues, silent_now, store.open_at, now_ms(),
                                          self._setup.alerts.silent_after_s)  # fmt: skip
        for signal in signals:
            store.retrying(self._engine, partial(store.record, signal=signal, now_ms=now_ms()))
            _LOGGER.info("%s: %s", signal.venue, "silent" if signal.level != Level.OK else "back")

    def _show(self) -> None:
        """Each venue whose alerts changed: its unresolved alerts, retained, to its display;
        and when coupons changed, every venue's running campaigns and their unused codes."""
        if time.monotonic() >= self._refresh_at:
            self._shown, self._refresh_at = 0, time.monotonic() + display.REFRESH_S
            self._coupons_shown = -1  # a campaign's end changes nothing in the database
        self._show_coupons()
        with transaction(self._engine) as db:
            newest = display.newest_change(db)
            if newest == self._shown:
                return
            states = [(v, display.state_of(db, v, newest))
                      for v in display.changed_venues(db, self._shown)]  # fmt: skip
        for venue, state in states:
            if state is not None:
                self._session.client.publish(alerts_topic(venue), encode(state), qos=1,
                                             retain=True)  # fmt: skip
        self._shown = newest

    def _show_coupons(self) -> None:
        with transaction(self._engine) as db:
            newest = coupon_display.newest_change(db)
            if newest == self._coupons_shown:
                return
            now = now_ms()
            states = [(v, coupon_display.state_of(db, v, newest, now))
                      for v in coupon_display.venues_with_coupons(db)]  # fmt: skip
        for venue, state in states:
            if state is not None:
                self._session.client.publish(coupons_topic(venue), encode(state), qos=1,
                                             retain=True)  # fmt: skip
        self._coupons_shown = newest

    def _deliver(self, stop: threading.Event) -> None:
        deliverer = Deliverer(self._engine, self._setup.alerts, self._setup.smtp)
        try:
            while not stop.is_set():
                try:
                    tried = deliverer.run_once(now_ms())
                except Exception:
                    _LOGGER.exception("the outbox could not be read; trying again")
                    tried = 0
                if not tried:
                    self._written.wait(self._setup.alerts.tick_s)
                    self._written.clear()
        finally:
            deliverer.close()


def run_alerts(setup: AlertsSetup, stop: threading.Event) -> None:
    engine = open_registry(setup.registry_url, serialised=True)
    try:
        mqtt_settings = access.mqtt_with_service_login(engine, "alerts", setup.mqtt)
        AlertsService(replace(setup, mqtt=mqtt_settings), engine).run(stop)
    finally:
        engine.dispose()
