"""What people do with alerts, for the API and the operator CLI alike: acknowledge, resolve
with a comment, set a venue's policy, add and remove webhook endpoints, and look at what was
given up. The input models validate every field (a 422 from the API with its reason)."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import update
from sqlalchemy.orm import Session

from alerts import store
from alerts.lifecycle import Change, State
from alerts.policy import DEFAULT_ONLY_WHEN_OPEN, Policy
from registry.access import Conflict
from registry.alert_models import Alert, AlertPolicy, WebhookEndpoint
from registry.inputs import Email, Text
from timeseries.events import Check

WEBHOOK_SECRET_BYTES = 24
Comment = Annotated[
    str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]+$")
]
Seconds = Annotated[float, Field(ge=0, le=30 * 86400)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommentIn(_In):
    comment: Comment | None = None


class ResolveIn(_In):
    comment: Comment = Field(description="what was done, or why it was not real")


class PolicyIn(_In):
    min_severity: Literal["warning", "critical"] = "warning"
    group_wait_s: Seconds = Field(30.0, le=3600)
    repeat_after_s: Seconds = 4 * 3600.0
    escalate_after_s: Seconds = 3600.0
    email_owner: bool = True
    only_when_open: list[Check] = Field(
        default_factory=lambda: sorted(DEFAULT_ONLY_WHEN_OPEN),
        max_length=len(Check),
        description="checks told only while the venue is open (raised while closed: told at "
        "opening, if still open)",
    )

    also_email: list[Email] = Field(
        default_factory=list, max_length=20,
        description="more addresses told with the owner (a bar manager), in the owner's language",
    )  # fmt: skip

    @classmethod
    def of(cls, p: Policy) -> PolicyIn:
        return cls(min_severity=p.min_severity, group_wait_s=p.group_wait_s,  # type: ignore[arg-type]
                   repeat_after_s=p.repeat_after_s, escalate_after_s=p.escalate_after_s,
                   email_owner=p.email_owner, only_when_open=sorted(p.only_when_open),
                   also_email=list(p.also_email))  # fmt: skip


class WebhookIn(_In):
    url: AnyHttpUrl = Field(description="where notifications are POSTed (http or https)")
    name: Text | None = None

    @field_validator("url")
    @classmethod
    def _not_too_long(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(url)) > 2000:
            raise ValueError("at most 2000 characters")
        return url


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()


def add_webhook(db: Session, venue_id: str, body: WebhookIn) -> WebhookEndpoint:
    hook = WebhookEndpoint(
        venue_id=venue_id, url=str(body.url), secret=new_secret(), created_ms=store.now_ms()
    )
    db.add(hook)
    db.flush()
    return hook


def set_policy(db: Session, venue_id: str, body: PolicyIn) -> Policy:
    row = db.get(AlertPolicy, venue_id) or AlertPolicy(venue_id=venue_id)
    row.min_severity, row.group_wait_s = body.min_severity, body.group_wait_s
    row.repeat_after_s, row.escalate_after_s = body.repeat_after_s, body.escalate_after_s
    row.email_owner, row.only_when_open = body.email_owner, sorted(set(body.only_when_open))
    row.also_email = list(dict.fromkeys(body.also_email))
    db.add(row)
    db.flush()
    return store.policy_of(db, venue_id)


def acknowledge(db: Session, alert: Alert, user_id: int | None, comment: str | None) -> None:
    """Someone is on it: no more reminders or escalation. Acknowledging twice is harmless."""
    now = store.now_ms()
    # A conditional update: the service may resolve it at this very moment.
    changed = db.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.state == State.OPEN)
        .values(state=State.ACKNOWLEDGED, acknowledged_ms=now)
    ).rowcount  # type: ignore[attr-defined]
    db.refresh(alert)
    if changed:
        store.history(db, alert, Change.ACKNOWLEDGED, now, user_id, comment)
    elif alert.state == State.RESOLVED:
        raise Conflict(f"alert {alert.id} is resolved already")


def resolve(db: Session, alert: Alert, user_id: int | None, comment: str) -> None:
    now = store.now_ms()
    try:
        store.resolve(db, alert, now, now, user_id, comment)
    except store.LostRace:
        raise Conflict(f"alert {alert.id} is resolved already") from None
