"""What the registry accepts: the fields of every create and update, validated here for the
API and the operator CLI alike.

Every string has a length limit and refuses control characters, every number a range (no NaN
or infinity), every id the pattern it has in the registry, so that bad input gets a clear
reason (a 422 from the API) with the field, never a database error.
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from edge.wire import ID_PATTERN, TS_MAX_MS, TS_MIN_MS
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
RoleName = Literal["operator", "owner"]  # the roles a person can be given
# The languages of the message catalogue (`texts.LANGUAGES`; a test keeps the two equal).
Language = Literal["en", "nl"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_In):
    email: Email
    name: Text
    role: RoleName
    language: Language = Field("en", description="what the user reads: alerts, reports, e-mail")


class UserPatch(_In):
    name: Text | None = None
    language: Language | None = Field(None, description="what the user reads")


class KeyIn(_In):
    name: Text


class BeerPatch(_In):
    name: Text | None = None
    style: Text | None = None
    serving_min_c: Celsius | None = None
    serving_max_c: Celsius | None = None
    foam_c: Celsius | None = None
    price_per_l: Annotated[float, Field(ge=0, le=10_000)] | None = None


class BeerIn(BeerPatch):
    name: Text
    style: Text = "lager"
    serving_min_c: Celsius = 2.0
    serving_max_c: Celsius = 7.0


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


class TapPatch(_In):
    beer_id: RowId | None = None
    keg_l: Litres | None = None
    warm_max_c: Celsius | None = Field(None, description="unset: the beer's serving_max_c")


class TapIn(TapPatch):
    id: Id
    keg_l: Litres = 50.0


class KegChangePatch(_In):
    keg_l: Litres | None = None
    beer_id: RowId | None = None
    at_ms: TimeMs | None = None


class KegChangeIn(_In):
    keg_l: Litres
    beer_id: RowId | None = Field(None, description="unset: the beer the tap pours now")
    at_ms: TimeMs | None = Field(None, description="unset: now")


class CleaningIn(_In):
    at_ms: TimeMs | None = Field(None, description="unset: now")


class DeviceIn(_In):
    id: Id
    name: Text | None = None
