"""The alerts' part of the registry schema: alerts with their history, what each check last
said, the notification policy and webhooks per venue, and the outbox of notifications.

The database holds the guarantees the alerts service relies on, so that two services running
at once, or one killed at any point, cannot make a duplicate: one unresolved alert per (venue,
subject, check) is a partial unique index; a notification is a row in the outbox before it is
sent, with the id a receiver sees on every attempt.
"""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.models import ID_LENGTH, Base, Venue

SUBJECT_LENGTH = ID_LENGTH  # a tap or device id, or "" for the venue as a whole


class CheckState(Base):
    """The newest event each (venue, subject, check) has had: a redelivered or late event is
    not newer, and changes nothing. Its row is also what two services lock on."""

    __tablename__ = "check_states"
    venue_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH), primary_key=True)
    check: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_ts: Mapped[int]
    level: Mapped[str] = mapped_column(String(16))


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    check: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # open | acknowledged | resolved
    severity: Mapped[str] = mapped_column(String(16))  # warning | critical
    # Device times (ms) of the events behind it; `_seen_ms` times are the service's clock.
    opened_ms: Mapped[int]
    opened_seen_ms: Mapped[int]
    last_ts: Mapped[int]
    value: Mapped[float]  # the latest event's evidence (see timeseries.events.QualityEvent)
    detail: Mapped[float]
    recovering_ts: Mapped[int | None]
    recovering_seen_ms: Mapped[int | None]
    acknowledged_ms: Mapped[int | None]
    resolved_ms: Mapped[int | None]
    first_told_ms: Mapped[int | None]
    last_told_ms: Mapped[int | None]
    escalated_ms: Mapped[int | None]
    venue: Mapped[Venue] = relationship()
    __table_args__ = (
        # The one guarantee ThingsBoard lacked: never two unresolved alerts for one key.
        Index(
            "uq_alerts_unresolved",
            "venue_id",
            "subject",
            "check",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_alerts_venue_opened", "venue_id", "opened_ms"),
    )


class AlertTransition(Base):
    """Every change of an alert: when (device time for what sensors said, the clock for what
    people and the service did), by whom, and a person's comment."""

    __tablename__ = "alert_transitions"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    change: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))  # afterwards
    severity: Mapped[str] = mapped_column(String(16))
    at_ms: Mapped[int]
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    comment: Mapped[str | None] = mapped_column(Text)
    alert: Mapped[Alert] = relationship()


class AlertPolicy(Base):
    """A venue's notification policy (`alerts.policy.Policy`); no row: the defaults."""

    __tablename__ = "alert_policies"
    venue_id: Mapped[str] = mapped_column(
        ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True
    )
    min_severity: Mapped[str] = mapped_column(String(16))
    group_wait_s: Mapped[float]
    repeat_after_s: Mapped[float]
    escalate_after_s: Mapped[float]
    email_owner: Mapped[bool]
    only_when_open: Mapped[list[str]] = mapped_column(JSON)
    also_email: Mapped[list[str]] = mapped_column(JSON)  # told with the owner
    venue: Mapped[Venue] = relationship()


class WebhookEndpoint(Base):
    """Where a venue's notifications are POSTed, signed per Standard Webhooks. The secret is
    kept as it is: the service needs it to sign every message."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    created_ms: Mapped[int]
    disabled_ms: Mapped[int | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    venue: Mapped[Venue] = relationship()


class PendingChange(Base):
    """A change to tell, waiting out the venue's grouping time; grouped into notifications
    with the others of its venue in the transaction that marks it `grouped_ms`."""

    __tablename__ = "pending_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    venue_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    change: Mapped[str] = mapped_column(String(16))
    # For operators only (escalations) or for the venue's usual recipients.
    audience: Mapped[str] = mapped_column(String(16))
    ts: Mapped[int]  # device time of the event behind it
    created_ms: Mapped[int]
    grouped_ms: Mapped[int | None] = mapped_column(index=True)
    alert: Mapped[Alert] = relationship()


class Notification(Base):
    """The outbox: one message to one recipient on one channel. `id` is the `webhook-id` and
    the e-mail's Message-ID on every attempt, so a receiver can tell a retry from news."""

    __tablename__ = "notifications"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    venue_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # webhook | email
    target: Mapped[str] = mapped_column(String(2000))  # endpoint id, or an e-mail address
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # pending | sent | dead
    attempts: Mapped[int]
    next_attempt_ms: Mapped[int] = mapped_column(index=True)
    lease_until_ms: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_ms: Mapped[int]
    sent_ms: Mapped[int | None]
    dead_ms: Mapped[int | None]
