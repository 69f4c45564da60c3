"""Response bodies of the API. What a request may carry is the registry's to say
(`registry.inputs`, re-exported here so the routes read one module)."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from registry.inputs import (
    BeerIn,
    BeerPatch,
    CleaningIn,
    DeviceIn,
    KegChangeIn,
    KegChangePatch,
    KeyIn,
    Language,
    RoleName,
    RowId,
    TapIn,
    TapPatch,
    Text,
    UserIn,
    UserPatch,
    VenueIn,
    VenuePatch,
)
from registry.provisioning import MqttLogin

__all__ = [
    "BeerIn", "BeerPatch", "CleaningIn", "DeviceIn", "KegChangeIn", "KegChangePatch", "KeyIn",
    "MqttLogin",
    "RowId", "TapIn", "TapPatch", "Text", "UserIn", "UserPatch", "VenueIn", "VenuePatch",
]  # fmt: skip

T = TypeVar("T")


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


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    organisation_id: int
    email: str
    name: str
    role: RoleName
    language: Language
    created_ms: int
    disabled_ms: int | None


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


class BeerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    organisation_id: int
    name: str
    style: str
    serving_min_c: float
    serving_max_c: float
    foam_c: float | None
    price_per_l: float | None = Field(
        description="euros per litre; reports turn volumes into money"
    )


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


class TapOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    venue_id: str
    id: str
    beer_id: int | None
    keg_l: float
    warm_max_c: float | None


class KegChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    venue_id: str
    tap_id: str
    keg_l: float
    beer_id: int | None
    at_ms: int
    inferred: bool = Field(
        description="concluded by ingest from pours well past an empty keg, not recorded by "
        "a person; PATCH confirms or corrects it, DELETE says it did not happen"
    )


class CleaningOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    venue_id: str
    tap_id: str
    at_ms: int


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    venue_id: str
    id: str
    name: str
    created_ms: int
    revoked_ms: int | None


class Provisioned(BaseModel):
    device: DeviceOut
    mqtt: MqttLogin
    api_key: str = Field(description="the device's API key: shown this once")
    agent_config: str = Field(description="a ready agent config (TOML): shown this once")


class DeviceSelf(BaseModel):
    device: DeviceOut
    mqtt: MqttLogin


class AlertOut(BaseModel):
    """An alert. Times ending `_ms` are ms since the epoch; `opened_ms` and `resolved_ms` are
    the sensors' times of the events behind them (a person's resolution: when it was done)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    venue_id: str
    subject: str = Field(description="the tap, the device (sensor box offline), or '' (venue)")
    check: str
    state: Literal["open", "acknowledged", "resolved"]
    severity: Literal["warning", "critical"]
    opened_ms: int
    last_ts: int
    value: float = Field(description="the latest event's evidence (see docs/alerts.md)")
    detail: float
    recovering_ts: int | None = Field(description="the check said ok; resolves after a hold-off")
    acknowledged_ms: int | None
    resolved_ms: int | None
    first_told_ms: int | None
    escalated_ms: int | None


class TransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    change: str
    state: str
    severity: str
    at_ms: int
    by_user_id: int | None = Field(description="who did it; none: the sensors or the service")
    comment: str | None


class AlertDetail(AlertOut):
    history: list[TransitionOut]


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    venue_id: str
    url: str
    created_ms: int
    disabled_ms: int | None
    disabled_reason: str | None


class NewWebhook(WebhookOut):
    secret: str = Field(description="the signing secret (whsec_...): shown this once")


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str = Field(description="the webhook-id / Message-ID, the same on every attempt")
    venue_id: str
    channel: Literal["webhook", "email"]
    target: str = Field(description="webhook endpoint id, or the e-mail address")
    state: Literal["pending", "sent", "dead"]
    attempts: int
    last_error: str | None
    created_ms: int
    sent_ms: int | None
    dead_ms: int | None
