"""The `[reports]` settings section, and what the reports service is given."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from alerts.settings import SmtpSettings
from timeseries.settings import InfluxSettings


class ReportsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A month's report is made this long after the month closed in the venue's time zone, so
    # that an agent that was offline at the month's end has caught up.
    margin_h: float = Field(6.0, ge=0)
    # How often the service looks for reports due and e-mails to send.
    tick_s: float = Field(60.0, gt=0)
    # A claim on a venue-month this old is taken over: its generator died.
    lease_s: float = Field(900.0, gt=0)
    # A report that failed is tried again after this, doubling each time (at most a day).
    retry_s: float = Field(300.0, gt=0)
    # E-mail each new report to the venue's owner, the PDF attached ([smtp] settings).
    email: bool = True


@dataclass(frozen=True, slots=True)
class ReportsSetup:
    reports: ReportsSettings
    smtp: SmtpSettings
    influx: InfluxSettings
    registry_url: str
