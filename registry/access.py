"""Who may see what in the registry, and how its refusals are named.

A `Principal` is who a request acts for. Tenancy in one place: `venues_visible` is the only
definition of which venues a principal sees; every venue-scoped read and write goes through
`venue_for`, which answers "not found" for a venue the principal may not see, so a tenant
cannot even learn that another's venue exists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy import ColumnElement, Engine, false, select
from sqlalchemy.orm import Session

from edge.settings import MqttSettings
from registry import secrets
from registry.db import transaction
from registry.models import ApiKey, Device, MqttCredential, User, Venue

_LOGGER = logging.getLogger(__name__)


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


def device_username(venue_id: str, device_id: str) -> str:
    # Ids cannot contain dots, so `dev.<venue>.<device>` and `svc.<name>` never collide.
    return f"dev.{venue_id}.{device_id}"


def service_username(service: str) -> str:
    return f"svc.{service}"


def stored_service_login(db: Session, service: str) -> tuple[str, str] | None:
    """The service's login if the registry has one (it never makes one: a read)."""
    credential = db.get(MqttCredential, service_username(service))
    if credential is None or credential.revoked_ms or credential.service_password is None:
        return None
    return credential.username, credential.service_password


def mqtt_with_service_login(engine: Engine, service: str, mqtt: MqttSettings) -> MqttSettings:
    """`mqtt` with the broker login the registry keeps for `service`, unless one is configured:
    so that a service started alone logs in to the broker `tapsense up` manages."""
    if mqtt.username is not None:
        return mqtt
    with transaction(engine) as db:
        login = stored_service_login(db, service)
    if login is None:
        return mqtt
    _LOGGER.info("logging in to the broker as %s (the registry's service login)", login[0])
    return replace(mqtt, username=login[0], password=login[1])
