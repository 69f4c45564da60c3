"""Every change to the registry, with its rules: the API's routes and `tapsense registry ...`
both call these, so neither can do what the other refuses.

Each function flushes and leaves the commit to its caller (a request, a CLI command). Changes
that touch broker logins (provisioning, revoking, deleting a venue, rotating a service's
password) rewrite the managed broker's users and ACL once the caller's commit succeeds, never
before: a rolled-back change reaches no broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from registry import secrets
from registry.access import (
    Conflict,
    Invalid,
    Principal,
    Role,
    device_username,
    now_ms,
    require,
    service_username,
)
from registry.broker import sync_broker
from registry.inputs import (
    BeerIn,
    BeerPatch,
    CleaningIn,
    KegChangeIn,
    KegChangePatch,
    TapIn,
    TapPatch,
    UserIn,
    UserPatch,
    VenueIn,
    VenuePatch,
)
from registry.models import (
    ApiKey,
    Beer,
    Device,
    KegChange,
    LineCleaning,
    MqttCredential,
    Organisation,
    Tap,
    User,
    Venue,
)


def sync_broker_after_commit(db: Session, broker_auth_dir: Path | None) -> None:
    """Rewrite the managed broker's logins when `db` next commits (nothing if unmanaged)."""
    if broker_auth_dir is None:
        return

    def _sync(session: Session) -> None:
        sync_broker(session.get_bind(), broker_auth_dir)  # type: ignore[arg-type]

    event.listen(db, "after_commit", _sync, once=True)


# --- organisations, people and keys -------------------------------------------------------


def create_organisation(db: Session, name: str) -> Organisation:
    if db.scalar(select(Organisation).where(Organisation.name == name)) is not None:
        raise Conflict(f"organisation {name!r} exists")
    org = Organisation(name=name, created_ms=now_ms())
    db.add(org)
    db.flush()
    return org


def create_user(db: Session, organisation_id: int, body: UserIn) -> User:
    if db.scalar(select(User).where(User.email == body.email)) is not None:
        raise Conflict(f"a user with e-mail {body.email!r} exists")
    user = User(organisation_id=organisation_id, email=body.email, name=body.name,
                role=Role(body.role), language=body.language, created_ms=now_ms())  # fmt: skip
    db.add(user)
    db.flush()
    return user


def update_user(db: Session, user: User, patch: UserPatch) -> User:
    values = patch.model_dump(exclude_unset=True)
    _refuse_nulls(values, ("name", "language"))
    for name, value in values.items():
        setattr(user, name, value)
    db.flush()
    return user


def disable_user(db: Session, user: User) -> None:
    """The user can no longer act: every key of theirs is revoked."""
    at = now_ms()
    user.disabled_ms = user.disabled_ms or at
    for key in db.scalars(select(ApiKey).where(ApiKey.user_id == user.id)):
        key.revoked_ms = key.revoked_ms or at
    db.flush()


def create_key(db: Session, name: str, *, user_id: int | None = None,
               device: tuple[str, str] | None = None) -> tuple[ApiKey, str]:  # fmt: skip
    """A new key and its token, which is shown this once and never stored."""
    if user_id is not None:
        user = db.get(User, user_id)
        if user is None:
            raise Invalid(f"no user {user_id}")
        if user.disabled_ms is not None:
            raise Conflict(f"user {user_id} is disabled")
    new = secrets.new_api_key()
    key = ApiKey(
        id=new.id, secret_sha256=new.secret_sha256, user_id=user_id, name=name,
        venue_id=device[0] if device else None, device_id=device[1] if device else None,
        created_ms=now_ms(),
    )  # fmt: skip
    db.add(key)
    db.flush()
    return key, new.token


def revoke_key(db: Session, key: ApiKey) -> None:
    key.revoked_ms = key.revoked_ms or now_ms()
    db.flush()


# --- beers --------------------------------------------------------------------------------


def _check_serving_range(low: float, high: float) -> None:
    if low >= high:
        raise Invalid(f"serving_min_c ({low}) must be below serving_max_c ({high})")


def _unique_beer_name(db: Session, organisation_id: int, name: str, beer_id: int | None) -> None:
    clash = db.scalar(select(Beer.id).where(Beer.organisation_id == organisation_id,
                                            Beer.name == name))  # fmt: skip
    if clash is not None and clash != beer_id:
        raise Conflict(f"a beer named {name!r} exists")


def create_beer(db: Session, organisation_id: int, body: BeerIn) -> Beer:
    _check_serving_range(body.serving_min_c, body.serving_max_c)
    _unique_beer_name(db, organisation_id, body.name, None)
    beer = Beer(organisation_id=organisation_id, created_ms=now_ms(), **body.model_dump())
    db.add(beer)
    db.flush()
    return beer


def update_beer(db: Session, beer: Beer, patch: BeerPatch) -> Beer:
    """The taps pouring it get its new thresholds within seconds (ingest follows the
    registry's generation)."""
    changes = patch.model_dump(exclude_unset=True)
    _refuse_nulls(changes, ("name", "style", "serving_min_c", "serving_max_c"))
    if "name" in changes:
        _unique_beer_name(db, beer.organisation_id, changes["name"], beer.id)
    _check_serving_range(changes.get("serving_min_c", beer.serving_min_c),
                         changes.get("serving_max_c", beer.serving_max_c))  # fmt: skip
    for field, value in changes.items():
        setattr(beer, field, value)
    db.flush()
    return beer


def delete_beer(db: Session, beer: Beer) -> None:
    """A beer still on a tap cannot go."""
    if db.scalar(select(Tap.id).where(Tap.beer_id == beer.id).limit(1)) is not None:
        raise Conflict(f"beer {beer.id} is on a tap; change the tap first")
    db.delete(beer)
    db.flush()


def check_beer(db: Session, organisation_id: int, beer_id: int | None) -> None:
    """A tap may pour only its organisation's beers."""
    if beer_id is None:
        return
    beer = db.get(Beer, beer_id)
    if beer is None or beer.organisation_id != organisation_id:
        raise Invalid(f"beer {beer_id} is not one of this organisation's beers")


# --- venues -------------------------------------------------------------------------------

_VENUE_NOT_NULL = ("name", "latitude", "longitude", "region", "timezone")


def _refuse_nulls(changes: dict[str, object], fields: tuple[str, ...]) -> None:
    for field in fields:
        if field in changes and changes[field] is None:
            raise Invalid(f"{field} cannot be null")


def check_owner(db: Session, organisation_id: int, owner_id: int | None) -> None:
    """A venue's owner must be an owner of the venue's organisation."""
    if owner_id is None:
        return
    owner = db.get(User, owner_id)
    if owner is None or owner.organisation_id != organisation_id or owner.role != Role.OWNER:
        raise Invalid(f"user {owner_id} is not an owner in this organisation")


def create_venue(db: Session, organisation_id: int, body: VenueIn) -> Venue:
    if db.get(Venue, body.id) is not None:
        raise Conflict(f"venue {body.id!r} exists")
    check_owner(db, organisation_id, body.owner_id)
    venue = Venue(organisation_id=organisation_id, created_ms=now_ms(), **body.model_dump())
    db.add(venue)
    db.flush()
    return venue


def update_venue(db: Session, who: Principal, venue: Venue, patch: VenuePatch) -> Venue:
    """Operators change anything; a venue's owner changes all but who owns it."""
    changes = patch.model_dump(exclude_unset=True)
    if "owner_id" in changes:
        require(who, Role.OPERATOR)
        check_owner(db, venue.organisation_id, changes["owner_id"])
    _refuse_nulls(changes, _VENUE_NOT_NULL)
    for field, value in changes.items():
        setattr(venue, field, value)
    db.flush()
    return venue


def delete_venue(db: Session, venue: Venue, broker_auth_dir: Path | None) -> None:
    """The venue, its taps, devices and keys go; its devices are refused by the broker from
    the commit on."""
    db.execute(delete(ApiKey).where(ApiKey.venue_id == venue.id))
    db.delete(venue)  # the database cascades to taps, devices and their logins
    db.flush()
    sync_broker_after_commit(db, broker_auth_dir)


# --- taps, kegs and cleanings -------------------------------------------------------------


def create_tap(db: Session, venue: Venue, body: TapIn) -> Tap:
    if db.get(Tap, (venue.id, body.id)) is not None:
        raise Conflict(f"tap {body.id!r} of venue {venue.id!r} exists")
    check_beer(db, venue.organisation_id, body.beer_id)
    tap = Tap(venue_id=venue.id, created_ms=now_ms(), **body.model_dump())
    db.add(tap)
    db.flush()
    return tap


def update_tap(db: Session, venue: Venue, tap: Tap, patch: TapPatch) -> Tap:
    changes = patch.model_dump(exclude_unset=True)
    _refuse_nulls(changes, ("keg_l",))
    check_beer(db, venue.organisation_id, changes.get("beer_id"))
    for field, value in changes.items():
        setattr(tap, field, value)
    db.flush()
    return tap


def delete_tap(db: Session, tap: Tap) -> None:
    db.delete(tap)
    db.flush()


def change_keg(db: Session, venue: Venue, tap: Tap, body: KegChangeIn) -> KegChange:
    """A full keg went on: the keg check counts from zero, with this keg's size and beer."""
    check_beer(db, venue.organisation_id, body.beer_id)
    beer_id = body.beer_id if body.beer_id is not None else tap.beer_id
    change = KegChange(venue_id=tap.venue_id, tap_id=tap.id, keg_l=body.keg_l, beer_id=beer_id,
                       at_ms=body.at_ms or now_ms())  # fmt: skip
    tap.keg_l, tap.beer_id = body.keg_l, beer_id
    db.add(change)
    db.flush()
    return change


def record_inferred_keg(
    db: Session, venue_id: str, tap_id: str, at_ms: int, keg_l: float
) -> KegChange | None:
    """A keg change ingest concluded from pours well past an empty keg, marked inferred; once
    per tap and time (a redelivered batch concludes it again). None for a tap that is gone."""
    tap = db.get(Tap, (venue_id, tap_id))
    known = select(KegChange.id).where(
        KegChange.venue_id == venue_id, KegChange.tap_id == tap_id, KegChange.at_ms == at_ms
    )
    if tap is None or db.scalar(known) is not None:
        return None
    change = KegChange(venue_id=venue_id, tap_id=tap_id, keg_l=keg_l, beer_id=tap.beer_id,
                       at_ms=at_ms, inferred=True)  # fmt: skip
    db.add(change)
    db.flush()
    return change


def correct_keg_change(
    db: Session, venue: Venue, tap: Tap, change: KegChange, patch: KegChangePatch
) -> KegChange:
    """A person confirms or corrects a keg change (an inferred one becomes recorded). The
    tap's newest keg sets the tap's keg size and beer, which the keg check follows."""
    fields = patch.model_dump(exclude_unset=True)
    _refuse_nulls(fields, ("keg_l", "at_ms"))
    check_beer(db, venue.organisation_id, fields.get("beer_id"))
    for field, value in fields.items():
        setattr(change, field, value)
    change.inferred = False
    newest = db.scalar(
        select(KegChange)
        .where(KegChange.venue_id == tap.venue_id, KegChange.tap_id == tap.id)
        .order_by(KegChange.at_ms.desc(), KegChange.id.desc())
        .limit(1)
    )
    if newest is change:
        tap.keg_l, tap.beer_id = change.keg_l, change.beer_id
    db.flush()
    return change


def delete_keg_change(db: Session, change: KegChange) -> None:
    """A keg change that did not happen (a wrong inference, a mistyped record)."""
    db.delete(change)
    db.flush()


def record_cleaning(db: Session, tap: Tap, body: CleaningIn) -> LineCleaning:
    """The line was cleaned: an overdue-cleaning warning clears, the count starts again."""
    cleaning = LineCleaning(venue_id=tap.venue_id, tap_id=tap.id, at_ms=body.at_ms or now_ms())
    db.add(cleaning)
    db.flush()
    return cleaning


# --- devices and service logins -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a newly provisioned device needs, shown once: its MQTT login and its API key."""

    device: Device
    mqtt_username: str
    mqtt_password: str
    api_key: str


def provision_device(db: Session, venue: Venue, device_id: str, name: str = "", *,
                     broker_auth_dir: Path | None = None) -> Provisioned:  # fmt: skip
    if db.get(Device, (venue.id, device_id)) is not None:
        raise Conflict(f"device {device_id!r} of venue {venue.id!r} exists")
    device = Device(venue_id=venue.id, id=device_id, name=name or device_id, created_ms=now_ms())
    db.add(device)
    db.flush()
    username, password = rotate_device_password(db, device)
    _, token = create_key(db, f"device {device_id}", device=(venue.id, device_id))
    sync_broker_after_commit(db, broker_auth_dir)
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


def revoke_device(db: Session, device: Device, *, broker_auth_dir: Path | None = None) -> None:
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
    sync_broker_after_commit(db, broker_auth_dir)


def service_login(db: Session, service: str, *, rotate: bool = False,
                  broker_auth_dir: Path | None = None) -> tuple[str, str]:  # fmt: skip
    """A service's broker login (ingest, alerts): the one it has, made on first use; a new
    password with `rotate` (the old one stops working at the broker's next reload)."""
    username = service_username(service)
    credential = db.get(MqttCredential, username)
    if credential is None:
        credential = MqttCredential(
            username=username, service=service, password_hash="", created_ms=now_ms()
        )
        db.add(credential)
    changed = rotate or credential.service_password is None or credential.revoked_ms is not None
    if rotate or credential.service_password is None:
        credential.service_password = secrets.new_password()
        credential.password_hash = secrets.mosquitto_hash(credential.service_password)
    credential.revoked_ms = None
    db.flush()
    if changed:
        sync_broker_after_commit(db, broker_auth_dir)
    return username, credential.service_password
