"""Edge devices: provisioning (MQTT login, API key and agent config, shown once), revoking."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import Caller, Db, PagingDep, SetupDep, VisibleDevice, VisibleVenue, page
from api.problems import PROBLEM_RESPONSES
from api.schemas import DeviceIn, DeviceOut, DeviceSelf, Page, Provisioned
from registry import access, changes
from registry.access import Role
from registry.models import Device
from registry.provisioning import agent_config, mqtt_login

router = APIRouter(tags=["devices"], responses=PROBLEM_RESPONSES)


@router.get("/venues/{venue}/devices", response_model=Page[DeviceOut])
def list_devices(db: Db, venue: VisibleVenue, paging: PagingDep) -> Page[DeviceOut]:
    statement = select(Device).where(Device.venue_id == venue.id).order_by(Device.id)
    return page(db, statement, paging, DeviceOut)


@router.post("/venues/{venue}/devices", response_model=Provisioned, status_code=201)
def provision_device(db: Db, setup: SetupDep, venue: VisibleVenue, body: DeviceIn) -> Provisioned:
    """Registers an edge device. The answer holds its MQTT password, its API key and a ready
    agent config: they are shown this once and stored only as hashes."""
    new = changes.provision_device(
        db, venue, body.id, body.name or "", broker_auth_dir=setup.broker_auth_dir
    )
    db.commit()
    login = mqtt_login(setup.mqtt, new.device, new.mqtt_password)
    return Provisioned(
        device=DeviceOut.model_validate(new.device), mqtt=login, api_key=new.api_key,
        agent_config=agent_config(login, new.device, setup.mqtt.tls),
    )  # fmt: skip


@router.get("/venues/{venue}/devices/{device}", response_model=DeviceOut)
def get_device(device: VisibleDevice) -> DeviceOut:
    return DeviceOut.model_validate(device)


@router.post("/venues/{venue}/devices/{device}/revoke", response_model=DeviceOut)
def revoke_device(db: Db, setup: SetupDep, device: VisibleDevice) -> DeviceOut:
    """The device is refused from now: by the broker (which drops its connection), by ingest
    (its messages are dead-lettered) and by the API (its key stops working)."""
    changes.revoke_device(db, device, broker_auth_dir=setup.broker_auth_dir)
    db.commit()
    return DeviceOut.model_validate(device)


@router.get("/device", response_model=DeviceSelf)
def device_self(db: Db, setup: SetupDep, who: Caller) -> DeviceSelf:
    """For a device key: the device's own registration and broker topics (no password)."""
    access.require(who, Role.DEVICE)
    device = db.get(Device, (who.venue_id, who.device_id))
    if device is None:
        raise access.NotFound("this key's device is gone")
    return DeviceSelf(device=DeviceOut.model_validate(device), mqtt=mqtt_login(setup.mqtt, device))
