"""Edge devices: provisioning (MQTT login, API key and agent config, shown once), revoking."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import Caller, Db, PagingDep, SettingsDep, VisibleDevice, VisibleVenue, page
from api.problems import PROBLEM_RESPONSES
from api.schemas import DeviceIn, DeviceOut, DeviceSelf, MqttLogin, Page, Provisioned
from edge.wire import DOWNLINK_ROOT, DeviceTopic, TopicKind
from registry import access
from registry.access import Role
from registry.broker import sync_broker
from registry.models import Device
from stack.settings import Settings

router = APIRouter(tags=["devices"], responses=PROBLEM_RESPONSES)


def _login(settings: Settings, device: Device, password: str | None = None) -> MqttLogin:
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


@router.get("/venues/{venue}/devices", response_model=Page[DeviceOut])
def list_devices(db: Db, venue: VisibleVenue, paging: PagingDep) -> Page[DeviceOut]:
    statement = select(Device).where(Device.venue_id == venue.id).order_by(Device.id)
    return page(db, statement, paging, DeviceOut)


@router.post("/venues/{venue}/devices", response_model=Provisioned, status_code=201)
def provision_device(
    db: Db, settings: SettingsDep, venue: VisibleVenue, body: DeviceIn
) -> Provisioned:
    """Registers an edge device. The answer holds its MQTT password, its API key and a ready
    agent config: they are shown this once and stored only as hashes."""
    new = access.provision_device(db, venue, body.id, body.name or "")
    db.commit()
    sync_broker(db.get_bind(), settings.mqtt.auth_dir)  # type: ignore[arg-type]
    login = _login(settings, new.device, new.mqtt_password)
    return Provisioned(
        device=DeviceOut.model_validate(new.device), mqtt=login, api_key=new.api_key,
        agent_config=agent_config(login, new.device, settings.mqtt.tls),
    )  # fmt: skip


@router.get("/venues/{venue}/devices/{device}", response_model=DeviceOut)
def get_device(device: VisibleDevice) -> DeviceOut:
    return DeviceOut.model_validate(device)


@router.post("/venues/{venue}/devices/{device}/revoke", response_model=DeviceOut)
def revoke_device(db: Db, settings: SettingsDep, device: VisibleDevice) -> DeviceOut:
    """The device is refused from now: by the broker (which drops its connection), by ingest
    (its messages are dead-lettered) and by the API (its key stops working)."""
    access.revoke_device(db, device)
    db.commit()
    sync_broker(db.get_bind(), settings.mqtt.auth_dir)  # type: ignore[arg-type]
    return DeviceOut.model_validate(device)


@router.get("/device", response_model=DeviceSelf)
def device_self(db: Db, settings: SettingsDep, who: Caller) -> DeviceSelf:
    """For a device key: the device's own registration and broker topics (no password)."""
    access.require(who, Role.DEVICE)
    device = db.get(Device, (who.venue_id, who.device_id))
    if device is None:
        raise access.NotFound("this key's device is gone")
    return DeviceSelf(device=DeviceOut.model_validate(device), mqtt=_login(settings, device))
