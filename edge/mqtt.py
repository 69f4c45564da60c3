"""Building paho-mqtt clients the one way Tapsense uses them: MQTT 5, QoS 1, auth and TLS.

paho's error codes are translated into `MqttError` here, so callers never compare return codes.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.settings import MqttSettings

_LOGGER = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
# The first retry waits 1 to 4 s, chosen per client, and doubles from there: a fleet that lost
# its broker at once does not come back at once.
RECONNECT_JITTER_S = 3


class MqttError(RuntimeError):
    """A publish, subscribe or connect that paho refused."""


def new_client(client_id: str, settings: MqttSettings, *, manual_ack: bool = False) -> paho.Client:
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    back_off(client)
    return client


def back_off(client: paho.Client) -> None:
    """Reconnect after 1..4 s (jittered per call), doubling up to `RECONNECT_MAX_S`."""
    first = RECONNECT_MIN_S + random.randint(0, RECONNECT_JITTER_S)
    client.reconnect_delay_set(first, RECONNECT_MAX_S)


def connect_properties(
    *, session_expiry_s: int = 0, receive_maximum: int | None = None
) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    return props


def check(rc: paho.MQTTErrorCode | int, what: str) -> None:
    if rc != paho.MQTT_ERR_SUCCESS:
        raise MqttError(f"{what}: {paho.error_string(rc)}")


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as received, tagged with the connection (generation) it came on."""

    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    dup: bool
    received_ms: int


class AckingSession:
    """A persistent MQTT 5 session that acknowledges by hand: the ingest worker's and the
    alerts service's way in.

    It subscribes to `filters` at every connect and sets `subscribed` (the caller's event, if
    given; logging `ready_line`, which `tapsense up` and tests wait for) once the broker
    confirmed them. A PUBACK means
    something only on the connection that received the message, whose message ids the next
    connection reuses: every connect and disconnect starts a new generation, each message is
    handed over with the generation it arrived in, and `ack` drops an older one's (the broker
    redelivers that message anyway). paho calls `on_message` on its network thread: the
    callback is given each message as an `Inbound` and must only hand it over.
    """

    def __init__(
        self,
        client_id: str,
        settings: MqttSettings,
        filters: list[tuple[str, int]],
        on_message: Callable[[Inbound], None],
        ready_line: str,
        subscribed: threading.Event | None = None,
    ) -> None:
        self.client = new_client(client_id, settings, manual_ack=True)
        self._settings = settings
        self._filters = filters
        self._deliver = on_message
        self._ready_line = ready_line
        self._lock = threading.Lock()
        self._generation = 0
        self.connected = threading.Event()
        self.subscribed = subscribed or threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, *, session_expiry_s: int, receive_maximum: int) -> None:
        """Connect in the background (and again after every loss), keeping the session."""
        s = self._settings
        props = connect_properties(
            session_expiry_s=session_expiry_s, receive_maximum=receive_maximum
        )
        self.client.connect_async(s.host, s.port, s.keepalive_s, clean_start=False,
                                  properties=props)  # fmt: skip
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, generation: int, mid: int, qos: int) -> bool:
        """Acknowledge a message of `generation`; False when its connection is gone."""
        with self._lock:
            if qos == 0:
                return True
            if generation != self._generation:
                return False
            self.client.ack(mid, qos)
            return True

    def _on_connect(
        self, client: paho.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            _LOGGER.error("broker refused the connection: %s", reason)
            return
        with self._lock:
            self._generation += 1
        client.subscribe(self._filters)
        self.connected.set()
        _LOGGER.info(
            "connected to the broker (session %d), subscribed to %s",
            self._generation,
            ", ".join(f for f, _ in self._filters),
        )

    def _on_subscribe(
        self, _c: paho.Client, _u: object, _mid: int, reasons: list, _p: object
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            _LOGGER.error("broker refused our subscriptions: %s", failed)
            return
        self.subscribed.set()
        _LOGGER.info("%s", self._ready_line)

    def _on_disconnect(
        self, _c: paho.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        with self._lock:
            self._generation += 1
        self.connected.clear()
        _LOGGER.log(
            logging.WARNING if getattr(reason, "is_failure", True) else logging.INFO,
            "disconnected from the broker (%s); unacknowledged messages will be redelivered",
            reason,
        )

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        self._deliver(Inbound(self._generation, message.mid, message.qos, message.topic,
                              bytes(message.payload), bool(message.dup),
                              int(time.time() * 1000)))  # fmt: skip
