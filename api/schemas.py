"""Request and response bodies of the registry routes: the HTTP contract, validated here.

Every string has a length limit and refuses control characters, every number a range (no NaN
or infinity), every id the pattern it has in the registry, so that bad input gets a 422 with
the field and the reason, never a database error.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from edge.wire import ID_PATTERN, TS_MAX_MS, TS_MIN_MS
from registry.access import Invalid
from registry.hours import HOURS_PATTERN

# No control characters (C0, DEL, C1); patterns avoid `\s`, which regex dialects disagree on.
_PRINTABLE = r"[^\x00-\x1f\x7f-\x9f]"
_WORD = r"[^@ \x00-\x1f\x7f-\x9f]"
Text = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=f"^{_PRINTABLE}+$")]
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
TimeMs = Annotated[int, Field(ge=TS_MIN_MS, lt=TS_MAX_MS, description="ms since the epoch")]
Celsius = Annotated[float, Field(ge=-5, le=30)]
Litres = Annotated[float, Field(gt=0, le=200)]
Days = Annotated[float, Field(gt=0, le=365)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Hours = Annotated[str, StringConstraints(pattern=HOURS_PATTERN)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=f"^{_WORD}+@{_WORD}+\\.{_WORD}+$")]
Role = Literal["operator", "owner"]

T = TypeVar("T")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="how many match, over all pages")
    limit: int
    offset: int


class Me(BaseModel):
    role: Literal["operator", "owner", "device"]
    organisation_id: int
    user_id: int | None = None
    venue_id: str | None = None
    device_id: str | None = None


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    created_ms: int


class UserIn(_In):
    email: Email
    name: Text
    role: Role


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    organisation_id: int
    email: str
    name: str
    role: Role
    created_ms: int
    disabled_ms: int | None


class KeyIn(_In):
    name: Text


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    user_id: int | None
    venue_id: str | None
    device_id: str | None
    created_ms: int
    revoked_ms: int | None


class NewKey(KeyOut):
    token: str = Field(description="the key itself: shown this once, stored only as a hash")


class BeerPatch(_In):
    name: Text | None = None
    style: Text | None = None
    serving_min_c: Celsius | None = None
    serving_max_c: Celsius | None = None
    foam_c: Celsius | None = None


class BeerIn(BeerPatch):
    name: Text
    style: Text = "lager"
    serving_min_c: Celsius = 2.0
    serving_max_c: Celsius = 7.0


class BeerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    organisation_id: int
    name: str
    style: str
    serving_min_c: float
    serving_max_c: float
    foam_c: float | None


class VenuePatch(_In):
    name: Text | None = None
    owner_id: RowId | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    region: Text | None = None
    timezone: Text | None = None
    hours: dict[Weekday, Hours] | None = Field(
        None, description='per weekday "HH:MM-HH:MM" or "closed"; a missing day is closed'
    )
    line_cleaning_days: Days | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


class VenueIn(VenuePatch):
    id: Id
    name: Text
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    region: Text
    timezone: Text = "Europe/Amsterdam"


class VenueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    organisation_id: int
    owner_id: int | None
    name: str
    latitude: float
    longitude: float
    region: str
    timezone: str
    hours: dict[str, str] | None
    line_cleaning_days: float | None
    created_ms: int


class TapPatch(_In):
    beer_id: RowId | None = None
    keg_l: Litres | None = None
    warm_max_c: Celsius | None = Field(None, description="unset: the beer's serving_max_c")


class TapIn(TapPatch):
    id: Id
    keg_l: Litres = 50.0


class TapOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    venue_id: str
    id: str
    beer_id: int | None
    keg_l: float
    warm_max_c: float | None


class KegChangeIn(_In):
    keg_l: Litres
    beer_id: RowId | None = Field(None, description="unset: the beer the tap pours now")
    at_ms: TimeMs | None = Field(None, description="unset: now")


class KegChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    venue_id: str
    tap_id: str
    keg_l: float
    beer_id: int | None
    at_ms: int


class CleaningIn(_In):
    at_ms: TimeMs | None = Field(None, description="unset: now")


class CleaningOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    venue_id: str
    tap_id: str
    at_ms: int


class DeviceIn(_In):
    id: Id
    name: Text | None = None


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    venue_id: str
    id: str
    name: str
    created_ms: int
    revoked_ms: int | None


class MqttLogin(BaseModel):
    host: str
    port: int
    username: str
    password: str | None = Field(None, description="only in the provisioning answer")
    publish: list[str]
    subscribe: list[str]


class Provisioned(BaseModel):
    device: DeviceOut
    mqtt: MqttLogin
    api_key: str = Field(description="the device's API key: shown this once")
    agent_config: str = Field(description="a ready agent config (TOML): shown this once")


class DeviceSelf(BaseModel):
    device: DeviceOut
    mqtt: MqttLogin


def check_serving_range(low: float, high: float) -> None:
    if low >= high:
        raise Invalid(f"serving_min_c ({low}) must be below serving_max_c ({high})")
