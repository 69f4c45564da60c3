"""The registry schema (SQLAlchemy 2). Alembic's migrations must produce exactly this.

Times are milliseconds since the Unix epoch (UTC), as on the wire. The `relationship()`s are
there so that one flush writes rows after the rows they refer to (the unit of work orders
inserts by relationships, not by foreign keys alone); nothing navigates them. Venue, tap and
device ids follow the wire contract's id pattern because they appear in MQTT topics.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints let Alembic alter SQLite tables (batch mode) and drop constraints by name.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 64


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Millisecond times overflow 32 bits; SQLite's integers are 64-bit already, and only its
    # INTEGER PRIMARY KEY autoincrements.
    type_annotation_map = {int: BigInteger().with_variant(Integer(), "sqlite")}  # noqa: RUF012


class Organisation(Base):
    """A brewer or distributor: its operators see all its venues."""

    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_ms: Mapped[int]


class User(Base):
    """A person: an operator of the organisation, or an owner of some of its venues."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # operator | owner
    language: Mapped[str] = mapped_column(String(8), server_default="en")  # texts.LANGUAGES
    created_ms: Mapped[int]
    disabled_ms: Mapped[int | None]


class ApiKey(Base):
    """A key is `tsk_<id>_<secret>`; only the SHA-256 of the secret is kept."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    venue_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    device_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    created_ms: Mapped[int]
    revoked_ms: Mapped[int | None]
    __table_args__ = (
        ForeignKeyConstraint(
            ["venue_id", "device_id"], ["devices.venue_id", "devices.id"], name="fk_api_keys_device"
        ),
    )
    device: Mapped[Device | None] = relationship()


class Beer(Base):
    __tablename__ = "beers"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    style: Mapped[str] = mapped_column(String(100))
    serving_min_c: Mapped[float]
    serving_max_c: Mapped[float]
    foam_c: Mapped[float | None]  # unset: serving_max_c + 3
    # What a litre sells for, in euros; reports turn volumes into money where it is set.
    price_per_l: Mapped[float | None]
    created_ms: Mapped[int]
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)


class Venue(Base):
    __tablename__ = "venues"
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    latitude: Mapped[float]
    longitude: Mapped[float]
    region: Mapped[str] = mapped_column(String(100), index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    # {"mon": "16:00-01:00", ..., "sun": "closed"}; null: always open.
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    line_cleaning_days: Mapped[float | None]
    created_ms: Mapped[int]


class Tap(Base):
    __tablename__ = "taps"
    venue_id: Mapped[str] = mapped_column(
        ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    beer_id: Mapped[int | None] = mapped_column(ForeignKey("beers.id"), index=True)
    keg_l: Mapped[float]
    warm_max_c: Mapped[float | None]  # unset: the beer's serving_max_c
    created_ms: Mapped[int]
    venue: Mapped[Venue] = relationship()


class KegChange(Base):
    """A full keg went on a tap: the keg check starts counting from zero."""

    __tablename__ = "keg_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    venue_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    tap_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    keg_l: Mapped[float]
    beer_id: Mapped[int | None] = mapped_column(ForeignKey("beers.id"))
    at_ms: Mapped[int]
    # Concluded by ingest from pours well past an empty keg; a person confirming or correcting
    # it through the API makes it recorded.
    inferred: Mapped[bool] = mapped_column(default=False, server_default=false())
    __table_args__ = (
        ForeignKeyConstraint(
            ["venue_id", "tap_id"], ["taps.venue_id", "taps.id"], ondelete="CASCADE"
        ),
    )
    tap: Mapped[Tap] = relationship()


class LineCleaning(Base):
    __tablename__ = "line_cleanings"
    id: Mapped[int] = mapped_column(primary_key=True)
    venue_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    tap_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    at_ms: Mapped[int]
    __table_args__ = (
        ForeignKeyConstraint(
            ["venue_id", "tap_id"], ["taps.venue_id", "taps.id"], ondelete="CASCADE"
        ),
    )
    tap: Mapped[Tap] = relationship()


class Device(Base):
    """An edge agent: publishes as `tapsense/v1/{venue_id}/{id}/...` with its MQTT user."""

    __tablename__ = "devices"
    venue_id: Mapped[str] = mapped_column(
        ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_ms: Mapped[int]
    revoked_ms: Mapped[int | None]
    venue: Mapped[Venue] = relationship()


class MqttCredential(Base):
    """A broker login. The hash is Mosquitto's own format, so it goes to its password file
    as it is; devices' usernames are `dev.<venue>.<device>`, services' `svc.<name>`."""

    __tablename__ = "mqtt_credentials"
    username: Mapped[str] = mapped_column(String(200), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    venue_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    device_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    service: Mapped[str | None] = mapped_column(String(32))  # ingest | alerts
    # A service's own password, kept because the service itself must present it at every
    # (re)start; whoever can read the registry can run its services anyway. Devices' passwords
    # are never kept: they are shown once, at provisioning.
    service_password: Mapped[str | None] = mapped_column(String(200))
    created_ms: Mapped[int]
    revoked_ms: Mapped[int | None]
    __table_args__ = (
        ForeignKeyConstraint(
            ["venue_id", "device_id"],
            ["devices.venue_id", "devices.id"],
            name="fk_mqtt_credentials_device",
            ondelete="CASCADE",
        ),
    )
    device: Mapped[Device | None] = relationship()


class RegistryState(Base):
    """One row: `generation` grows with every change ingest cares about (`registry.db`), so
    ingest can tell in one tiny query whether its directory is stale."""

    __tablename__ = "registry_state"
    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int]


# Changes to these make ingest's directory stale.
DIRECTORY_MODELS = (Venue, Tap, Beer, Device, KegChange, LineCleaning)
