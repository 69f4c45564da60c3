"""Registry operations the API and the operator CLI share, and who may see what.

A `Principal` is who a request acts for. Tenancy in one place: `venues_visible` is the only
definition of which venues a principal sees; every venue-scoped read and write goes through
`venue_for`, which answers "not found" for a venue the principal may not see, so a tenant
cannot even learn that another's venue exists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from registry import secrets
from registry.models import ApiKey, Beer, Device, MqttCredential, Organisation, Tap, User, Venue


class Role(StrEnum):
    OPERATOR = "operator"  # a brewer's or distributor's staff: every venue of the organisation
    OWNER = "owner"  # a venue owner: the venues they own
    DEVICE = "device"  # an edge device: its own identity and configuration


class AccessError(Exception):
    """Base of the registry's refusals; `status` is the HTTP status the API answers with."""

    status = 400


class Invalid(AccessError):
    """Well-formed, but not possible in the registry as it is."""

    status = 422


class NotFound(AccessError):
    status = 404


class Forbidden(AccessError):
    status = 403


class Conflict(AccessError):
    status = 409


class Unavailable(AccessError):
    """A backing service (InfluxDB) did not answer."""

    status = 503


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    organisation_id: int
    user_id: int | None = None
    venue_id: str | None = None  # devices
    device_id: str | None = None
    key_id: str | None = None


def now_ms() -> int:
    return int(time.time() * 1000)


def authenticate(db: Session, token: str) -> Principal | None:
    """The principal of a valid, unrevoked API key; None for anything else."""
    parsed = secrets.parse_api_key(token)
    if parsed is None:
        return None
    key = db.get(ApiKey, parsed[0])
    if key is None or key.revoked_ms is not None:
        return None
    if not secrets.secret_matches(parsed[1], key.secret_sha256):
        return None
    if key.user_id is not None:
        user = db.get(User, key.user_id)
        if user is None or user.disabled_ms is not None:
            return None
        return Principal(Role(user.role), user.organisation_id, user_id=user.id, key_id=key.id)
    device = db.get(Device, (key.venue_id, key.device_id))
    venue = db.get(Venue, key.venue_id)
    if device is None or venue is None or device.revoked_ms is not None:
        return None
    return Principal(
        Role.DEVICE, venue.organisation_id, venue_id=venue.id, device_id=device.id, key_id=key.id
    )


def venues_visible(who: Principal) -> ColumnElement[bool]:
    """The venues `who` may see, as a WHERE clause."""
    if who.role is Role.OPERATOR:
        return Venue.organisation_id == who.organisation_id
    if who.role is Role.OWNER:
        return Venue.owner_id == who.user_id if who.user_id is not None else false()
    return Venue.id == who.venue_id if who.venue_id is not None else false()


def venue_for(db: Session, who: Principal, venue_id: str) -> Venue:
    venue = db.scalar(select(Venue).where(Venue.id == venue_id, venues_visible(who)))
    if venue is None:
        raise NotFound(f"venue {venue_id!r} not found")
    return venue


def require(who: Principal, *roles: Role) -> None:
    if who.role not in roles:
        raise Forbidden(f"needs the {' or '.join(roles)} role; this key is {who.role}")


def users_visible(who: Principal) -> ColumnElement[bool]:
    if who.role is Role.OPERATOR:
        return User.organisation_id == who.organisation_id
    return User.id == who.user_id if who.user_id is not None else false()


def user_for(db: Session, who: Principal, user_id: int) -> User:
    user = db.scalar(select(User).where(User.id == user_id, users_visible(who)))
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


# --- creating things (shared by the API and the CLI) --------------------------------------


def create_organisation(db: Session, name: str) -> Organisation:
    if db.scalar(select(Organisation).where(Organisation.name == name)) is not None:
        raise Conflict(f"organisation {name!r} exists")
    org = Organisation(name=name, created_ms=now_ms())
    db.add(org)
    db.flush()
    return org


def create_user(db: Session, organisation_id: int, email: str, name: str, role: Role) -> User:
    if role is Role.DEVICE:
        raise AccessError("devices are provisioned, not created as users")
    if db.scalar(select(User).where(User.email == email)) is not None:
        raise Conflict(f"a user with e-mail {email!r} exists")
    user = User(
        organisation_id=organisation_id, email=email, name=name, role=role, created_ms=now_ms()
    )
    db.add(user)
    db.flush()
    return user


def create_key(db: Session, name: str, *, user_id: int | None = None,
               device: tuple[str, str] | None = None) -> tuple[ApiKey, str]:  # fmt: skip
    """A new key and its token, which is shown this once and never stored."""
    new = secrets.new_api_key()
    key = ApiKey(
        id=new.id, secret_sha256=new.secret_sha256, user_id=user_id, name=name,
        venue_id=device[0] if device else None, device_id=device[1] if device else None,
        created_ms=now_ms(),
    )  # fmt: skip
    db.add(key)
    db.flush()
    return key, new.token


def check_owner(db: Session, organisation_id: int, owner_id: int | None) -> None:
    """A venue's owner must be an owner of the venue's organisation."""
    if owner_id is None:
        return
    owner = db.get(User, owner_id)
    if owner is None or owner.organisation_id != organisation_id or owner.role != Role.OWNER:
        raise Invalid(f"user {owner_id} is not an owner in this organisation")


def check_beer(db: Session, organisation_id: int, beer_id: int | None) -> None:
    """A tap may pour only its organisation's beers."""
    if beer_id is None:
        return
    beer = db.get(Beer, beer_id)
    if beer is None or beer.organisation_id != organisation_id:
        raise Invalid(f"beer {beer_id} is not one of this organisation's beers")


def create_venue(db: Session, organisation_id: int, fields: dict[str, Any]) -> Venue:
    """`fields`: the venue's columns (its id among them), validated by `api.schemas.VenueIn`."""
    if db.get(Venue, fields["id"]) is not None:
        raise Conflict(f"venue {fields['id']!r} exists")
    check_owner(db, organisation_id, fields.get("owner_id"))
    venue = Venue(organisation_id=organisation_id, created_ms=now_ms(), **fields)
    db.add(venue)
    db.flush()
    return venue


def create_tap(db: Session, venue: Venue, fields: dict[str, Any]) -> Tap:
    """`fields`: the tap's columns (its id among them), validated by `api.schemas.TapIn`."""
    if db.get(Tap, (venue.id, fields["id"])) is not None:
        raise Conflict(f"tap {fields['id']!r} of venue {venue.id!r} exists")
    check_beer(db, venue.organisation_id, fields.get("beer_id"))
    tap = Tap(venue_id=venue.id, created_ms=now_ms(), **fields)
    db.add(tap)
    db.flush()
    return tap


def device_username(venue_id: str, device_id: str) -> str:
    # Ids cannot contain dots, so `dev.<venue>.<device>` and `svc.<name>` never collide.
    return f"dev.{venue_id}.{device_id}"


def service_username(service: str) -> str:
    return f"svc.{service}"


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a newly provisioned device needs, shown once: its MQTT login and its API key."""

    device: Device
    mqtt_username: str
    mqtt_password: str
    api_key: str


def provision_device(db: Session, venue: Venue, device_id: str, name: str = "") -> Provisioned:
    if db.get(Device, (venue.id, device_id)) is not None:
        raise Conflict(f"device {device_id!r} of venue {venue.id!r} exists")
    device = Device(venue_id=venue.id, id=device_id, name=name or device_id, created_ms=now_ms())
    db.add(device)
    db.flush()
    username, password = rotate_device_password(db, device)
    _, token = create_key(db, f"device {device_id}", device=(venue.id, device_id))
    return Provisioned(device, username, password, token)


def rotate_device_password(db: Session, device: Device, *, flush: bool = True) -> tuple[str, str]:
    """A new MQTT password for a device (the old one stops working at the broker's reload).
    `flush=False` leaves the write to the caller's next flush (bulk registration)."""
    username = device_username(device.venue_id, device.id)
    password = secrets.new_password()
    credential = db.get(MqttCredential, username)
    if credential is None:
        credential = MqttCredential(
            username=username, venue_id=device.venue_id, device_id=device.id, password_hash="",
            created_ms=now_ms(),
        )  # fmt: skip
        db.add(credential)
    credential.password_hash = secrets.mosquitto_hash(password)
    credential.revoked_ms = None
    if flush:
        db.flush()
    return username, password


def revoke_device(db: Session, device: Device) -> None:
    """The device can no longer log in to the broker or the API; its messages are refused."""
    at = now_ms()
    device.revoked_ms = device.revoked_ms or at
    for credential in db.scalars(
        select(MqttCredential).where(
            MqttCredential.venue_id == device.venue_id, MqttCredential.device_id == device.id
        )
    ):
        credential.revoked_ms = credential.revoked_ms or at
    for key in db.scalars(
        select(ApiKey).where(ApiKey.venue_id == device.venue_id, ApiKey.device_id == device.id)
    ):
        key.revoked_ms = key.revoked_ms or at
    db.flush()


def service_login(db: Session, service: str, *, rotate: bool = False) -> tuple[str, str]:
    """A service's broker login (ingest, alerts): the one it has, made on first use; a new
    password with `rotate` (the old one stops working at the broker's next reload)."""
    username = service_username(service)
    credential = db.get(MqttCredential, username)
    if credential is None:
        credential = MqttCredential(
            username=username, service=service, password_hash="", created_ms=now_ms()
        )
        db.add(credential)
    if rotate or credential.service_password is None:
        credential.service_password = secrets.new_password()
        credential.password_hash = secrets.mosquitto_hash(credential.service_password)
    credential.revoked_ms = None
    db.flush()
    return username, credential.service_password


def stored_service_login(db: Session, service: str) -> tuple[str, str] | None:
    """The service's login if the registry has one (it never makes one: a read)."""
    credential = db.get(MqttCredential, service_username(service))
    if credential is None or credential.revoked_ms or credential.service_password is None:
        return None
    return credential.username, credential.service_password
