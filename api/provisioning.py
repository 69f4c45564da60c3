"""What a provisioned device is told: its broker login and topics, and its agent config file.

Kept apart from the routes so the operator CLI can print the same without loading the API.
"""

from __future__ import annotations

from api.schemas import MqttLogin
from edge.wire import DOWNLINK_ROOT, DeviceTopic, TopicKind
from registry import access
from registry.models import Device
from stack.settings import Settings


def mqtt_login(settings: Settings, device: Device, password: str | None = None) -> MqttLogin:
    return MqttLogin(
        host=settings.mqtt.host, port=settings.mqtt.port,
        username=access.device_username(device.venue_id, device.id), password=password,
        publish=[str(DeviceTopic(device.venue_id, device.id, kind)) for kind in TopicKind],
        subscribe=[f"{DOWNLINK_ROOT}/{device.venue_id}/#"],
    )  # fmt: skip


def agent_config(login: MqttLogin, device: Device, tls: bool) -> str:
    """The agent's config file: `[agent]` is `edge.agent.AgentConfig`, `[mqtt]` the settings'
    `mqtt` section (both validate it when the agent starts)."""
    return (
        "# Tapsense edge agent: keep this file secret (it holds the broker password).\n"
        "[agent]\n"
        f'venue = "{device.venue_id}"\n'
        f'device = "{device.id}"\n'
        'spool_path = "/var/lib/tapsense/spool.sqlite"\n\n'
        "[mqtt]\n"
        f'host = "{login.host}"\n'
        f"port = {login.port}\n"
        f'username = "{login.username}"\n'
        f'password = "{login.password}"\n'
        f"tls = {'true' if tls else 'false'}\n"
    )
