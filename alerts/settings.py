"""The alerts service's settings: its `[alerts]` section, the `[smtp]` server it (and the
monthly reports) send e-mail through, and `AlertsSetup`, everything the service is given to
start. `stack.settings` composes them; `docs/settings.md` documents every key."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from edge.settings import MqttSettings
from timeseries.settings import InfluxSettings


class AlertsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The persistent session's name: two services running at once need two names (they share
    # the subscription, so each event reaches one of them).
    client_id: str = Field("tapsense-alerts-0", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    share_group: str = Field("tapsense-alerts", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # A recovered alert resolves once no new raise came for this long: a cooler being repaired
    # flaps for minutes, and its owner wants one alert and one "resolved", not ten.
    resolve_hold_s: float = Field(300.0, ge=0)
    # How often the clock's work is done (resolutions, grouping, reminders, the outbox).
    tick_s: float = Field(0.2, gt=0, le=60)
    # Webhooks: each attempt waits at most this long for an answer; retries back off from
    # `retry_initial_s` doubling to `retry_max_s` (with jitter), and a message still not
    # delivered `give_up_after_s` after it was written goes to the dead letters.
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)
    retry_initial_s: float = Field(5.0, gt=0)
    retry_max_s: float = Field(3600.0, gt=0)
    give_up_after_s: float = Field(24 * 3600.0, gt=0)
    # A claimed notification is another service's to retry after this long (a service killed
    # mid-send): longer than any one attempt takes.
    lease_s: float = Field(120.0, gt=0)
    # A venue open now whose newest reading is older than this is silent (an alert); 0: never.
    # Looked at every `silent_every_s` in InfluxDB.
    silent_after_s: float = Field(900.0, ge=0)
    silent_every_s: float = Field(60.0, gt=0)


class SmtpSettings(BaseModel):
    """The mail server e-mail goes out through; no host: no e-mail (logged, not an error)."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = None
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    sender: str = "Tapsense <alerts@tapsense.invalid>"
    timeout_s: float = Field(30.0, gt=0)


@dataclass(frozen=True, slots=True)
class AlertsSetup:
    alerts: AlertsSettings
    smtp: SmtpSettings
    mqtt: MqttSettings
    influx: InfluxSettings
    registry_url: str
