"""Building paho-mqtt clients the one way Tapsense uses them: MQTT 5, QoS 1, auth and TLS.

paho's error codes are translated into `MqttError` here, so callers never compare return codes.
"""

from __future__ import annotations

import random
import ssl

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.settings import MqttSettings

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
