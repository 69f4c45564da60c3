"""From changes to tell to notifications in the outbox: grouped per venue, rendered once in
each recipient's language, written in the same transaction that marks the changes grouped.

A notification's content is fixed when it is written, so every retry sends the same bytes
under the same id (the `webhook-id`, the e-mail's Message-ID).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts import messages
from alerts.lifecycle import Change
from alerts.messages import Item, Line
from alerts.store import OPERATORS, VENUE, LostRace, policy_of
from registry.access import Role
from registry.alert_models import Alert, Notification, PendingChange, WebhookEndpoint
from registry.models import Beer, Tap, User, Venue
from texts import DEFAULT_LANGUAGE, Texts
from timeseries.events import Level

WEBHOOK = "webhook"
EMAIL = "email"
PENDING, SENT, DEAD = "pending", "sent", "dead"

COLOURS = {Level.CRITICAL: "#b3261e", Level.WARNING: "#b26a00", Level.OK: "#2e7d32"}


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("alerts", "templates"), autoescape=True)
    return env.get_template("email.html")


def ordered(lines: list[Line]) -> list[Line]:
    """What to read first: what is over last, the venue as a whole (the cooler: the cause of
    warm taps) before its taps, critical before warning."""
    return sorted(lines, key=lambda x: (x.change is Change.RESOLVED, x.subject != "",
                                        x.severity is not Level.CRITICAL))  # fmt: skip


def render_email(t: Texts, venue_name: str, lines: list[Line]) -> Email:
    """The e-mail for a group of changes, as plain text and HTML from the same words."""
    subject = messages.subject_line(t, venue_name, lines)
    footer = t._(
        "Sent by Tapsense for %(venue)s. Acknowledge an alert to stop reminders.", venue=venue_name
    )
    remedy_label = t._("What to do:")
    shown = []
    text = [subject, ""]
    told_remedies: set[str] = set()
    for x in ordered(lines):
        resolved = x.change is Change.RESOLVED
        label = t._("Resolved") if resolved else messages.severity_word(t, x.severity)
        colour = COLOURS[Level.OK if resolved else x.severity]
        remedy = "" if x.remedy in told_remedies else x.remedy  # six warm taps: one remedy
        told_remedies.add(x.remedy)
        shown.append({"label": label, "colour": colour, "title": x.title,
                      "headline": x.headline, "remedy": remedy})  # fmt: skip
        text += [f"{label}: {x.title}", x.headline]
        if remedy:
            text.append(f"{remedy_label} {remedy}")
        text.append("")
    text.append(footer)
    html = _template().render(
        language=t.language,
        subject=subject,
        venue=venue_name,
        lines=shown,
        remedy_label=remedy_label,
        footer=footer,
    )
    return Email(subject, "\n".join(text) + "\n", html)


def group(db: Session, now_ms: int) -> int:
    """Write the notifications of every venue whose oldest change to tell has waited out the
    venue's grouping time; how many it wrote."""
    pending = db.scalars(
        select(PendingChange)
        .where(PendingChange.grouped_ms.is_(None))
        .order_by(PendingChange.id)
        .with_for_update()
    ).all()
    by_venue: dict[str, list[PendingChange]] = defaultdict(list)
    for change in pending:
        by_venue[change.venue_id].append(change)
    written = 0
    for venue_id, changes in by_venue.items():
        wait_ms = policy_of(db, venue_id).group_wait_s * 1000
        if min(c.created_ms for c in changes) + wait_ms > now_ms:
            continue
        done = db.execute(
            update(PendingChange)
            .where(
                PendingChange.id.in_([c.id for c in changes]), PendingChange.grouped_ms.is_(None)
            )
            .values(grouped_ms=now_ms)
        ).rowcount  # type: ignore[attr-defined]
        if done != len(changes):
            raise LostRace(f"the changes to tell of {venue_id} were grouped meanwhile")
        written += _notify(db, db.get_one(Venue, venue_id), changes, now_ms)
    return written


def told_once(changes: list[PendingChange]) -> list[PendingChange]:
    """One line per alert and change: an alert opened in this group is told at its severity
    now, so its raise in the same group says nothing more."""
    opened = {c.alert_id for c in changes if c.change == Change.OPENED}
    seen: set[tuple[int, str, str]] = set()
    kept = []
    for c in changes:
        key = (c.alert_id, c.change, c.audience)
        if key in seen or (c.change == Change.RAISED and c.alert_id in opened):
            continue
        seen.add(key)
        kept.append(c)
    return kept


def _notify(db: Session, venue: Venue, changes: list[PendingChange], now_ms: int) -> int:
    written = 0
    changes = told_once(changes)
    for audience in (VENUE, OPERATORS):
        items = [_item(db, c) for c in changes if c.audience == audience]
        if not items:
            continue
        for channel, target, language in _recipients(db, venue, audience):
            t = Texts(language, venue.timezone)
            lines = [messages.line(t, i) for i in items]
            if channel == EMAIL:
                email = render_email(t, venue.name, lines)
                payload: dict[str, Any] = {
                    "subject": email.subject,
                    "text": email.text,
                    "html": email.html,
                }
            else:
                payload = _webhook_body(t, venue, items, lines)
            db.add(
                Notification(
                    id=f"msg_{uuid.uuid4().hex}",
                    venue_id=venue.id,
                    channel=channel,
                    target=target,
                    payload=payload,
                    state=PENDING,
                    attempts=0,
                    next_attempt_ms=now_ms,
                    created_ms=now_ms,
                )
            )
            written += 1
    return written


def owner_contact(db: Session, venue: Venue) -> tuple[str | None, str]:
    """The venue owner's e-mail address (None: no owner, or a disabled one) and language (the
    venue's: its owner's, disabled or not; the default without an owner). Alerts, reports
    and coupons all reach the owner through this."""
    owner = db.get(User, venue.owner_id) if venue.owner_id is not None else None
    if owner is None:
        return None, DEFAULT_LANGUAGE
    return (owner.email if owner.disabled_ms is None else None), owner.language


def venue_language(db: Session, venue: Venue) -> str:
    """The venue owner's language: also for its webhooks and its display."""
    return owner_contact(db, venue)[1]


def _recipients(db: Session, venue: Venue, audience: str) -> list[tuple[str, str, str]]:
    """(channel, target, language) for everyone who hears of this venue's changes."""
    if audience == OPERATORS:
        operators = db.scalars(
            select(User)
            .where(
                User.organisation_id == venue.organisation_id,
                User.role == Role.OPERATOR,
                User.disabled_ms.is_(None),
            )
            .order_by(User.id)
        )
        return [(EMAIL, u.email, u.language) for u in operators]
    owner = db.get(User, venue.owner_id) if venue.owner_id is not None else None
    language = venue_language(db, venue)
    found = []
    policy = policy_of(db, venue.id)
    if owner is not None and owner.disabled_ms is None and policy.email_owner:
        found.append((EMAIL, owner.email, owner.language))
    found += [(EMAIL, address, language) for address in policy.also_email
              if owner is None or address != owner.email]  # fmt: skip
    hooks = db.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.venue_id == venue.id, WebhookEndpoint.disabled_ms.is_(None))
        .order_by(WebhookEndpoint.id)
    )
    found += [(WEBHOOK, str(hook.id), language) for hook in hooks]
    return found


def _item(db: Session, change: PendingChange) -> Item:
    return item_of(db, db.get_one(Alert, change.alert_id), Change(change.change), change.ts)


def item_of(db: Session, alert: Alert, change: Change, ts: int) -> Item:
    """An alert as words tell it: with its tap's beer and warm limit."""
    beer, limit = None, None
    tap = db.get(Tap, (alert.venue_id, alert.subject)) if alert.subject else None
    if tap is not None and tap.beer_id is not None:
        found = db.get_one(Beer, tap.beer_id)
        beer, limit = found.name, tap.warm_max_c or found.serving_max_c
    return Item(alert.id, change, alert.check, Level(alert.severity), alert.subject, beer,
                limit, ts, alert.value, alert.detail)  # fmt: skip


def _webhook_body(t: Texts, venue: Venue, items: list[Item], lines: list[Line]) -> dict[str, Any]:
    """The JSON a webhook receives: the figures for machines, the words for people."""
    return {
        "type": "alerts.changed",
        "venue": {"id": venue.id, "name": venue.name},
        "language": t.language,
        "summary": messages.subject_line(t, venue.name, lines),
        "alerts": [
            {
                "id": i.alert_id,
                "change": i.change,
                "check": i.check,
                "severity": i.severity,
                "subject": i.subject,
                "beer": i.beer,
                "ts": i.ts,
                "value": i.value,
                "detail": i.detail,
                "title": x.title,
                "text": x.headline,
                "remedy": x.remedy,
            }
            for i, x in zip(items, lines, strict=True)
        ],
    }


def test_message(db: Session, venue: Venue, hook: WebhookEndpoint, now_ms: int) -> Notification:
    """A message to check that an endpoint receives and verifies what Tapsense sends."""
    note = Notification(id=f"msg_{uuid.uuid4().hex}", venue_id=venue.id, channel=WEBHOOK,
                        target=str(hook.id), payload={"type": "test", "venue": {"id": venue.id,
                        "name": venue.name}, "alerts": []}, state=PENDING, attempts=0,
                        next_attempt_ms=now_ms, created_ms=now_ms)  # fmt: skip
    db.add(note)
    db.flush()
    return note
