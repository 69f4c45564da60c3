"""What a provisioned device is told: its broker login and topics, and its agent config file.
The API's provisioning answer and `tapsense registry device` print the same."""

from __future__ import annotations

from pydantic import BaseModel, Field

from edge.settings import MqttSettings
from edge.wire import DOWNLINK_ROOT, DeviceTopic, TopicKind
from registry import access
from registry.models import Device


class MqttLogin(BaseModel):
    host: str
    port: int
    username: str
    password: str | None = Field(None, description="only in the provisioning answer")
    publish: list[str]
    subscribe: list[str]


def mqtt_login(broker: MqttSettings, device: Device, password: str | None = None) -> MqttLogin:
    """`broker`: the broker devices are told to use (the server's `[mqtt]` host and port)."""
    return MqttLogin(
        host=broker.host, port=broker.port,
        username=access.device_username(device.venue_id, device.id), password=password,
        publish=[str(DeviceTopic(device.venue_id, device.id, kind)) for kind in TopicKind],
        subscribe=[f"{DOWNLINK_ROOT}/{device.venue_id}/#"],
    )  # fmt: skip


def agent_config(login: MqttLogin, device: Device, tls: bool) -> str:
    """The agent's config file: `[agent]` is `edge.agent.AgentConfig`, `[mqtt]` is
    `edge.settings.MqttSettings` (both validate it when the agent starts)."""
    return (
        "# Tapsense edge agent: keep this file secret (it holds the broker password).\n"
        "[agent]\n"
        f'venue = "{device.venue_id}"\n'
        f'device = "{device.id}"\n'
        'spool_path = "/var/lib/tapsense-agent/spool.sqlite"\n\n'
        "[mqtt]\n"
        f'host = "{login.host}"\n'
        f"port = {login.port}\n"
        f'username = "{login.username}"\n'
        f'password = "{login.password}"\n'
        f"tls = {'true' if tls else 'false'}\n"
    )
