"""What the alerts service does to the database, each step one transaction.

`record` turns a signal into an alert change, its history and (if the policy says so) a change
to tell; `sweep` resolves recovered alerts after their hold-off, repeats and escalates what
nobody acknowledged, and tells alerts raised while closed once the venue opens; `group` turns
a venue's changes to tell into notifications in the outbox. Every step re-reads what it
changes under a row lock (SQLite: the one writer) and changes it with a condition, so that two
services running at once do each thing once; a step that lost a race is rolled back and
retried by `retrying`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from alerts import lifecycle, policy
from alerts.lifecycle import Change, Current, Signal, State, Step
from alerts.policy import Policy
from registry.alert_models import Alert, AlertPolicy, AlertTransition, CheckState, PendingChange
from registry.db import transaction
from registry.hours import is_open
from registry.models import Venue
from timeseries.events import Level

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
RETRIES = 8

VENUE = "venue"  # the venue's usual recipients: its owner and webhooks
OPERATORS = "operators"  # escalations: the organisation's operators


class LostRace(RuntimeError):
    """Another service changed the rows this step was changing: roll back and try again."""


def retrying(engine: Engine, step: Callable[[Session], T]) -> T:
    """Run `step` in a transaction, again if it lost a race with another service (a unique
    index, SQLite's lock, PostgreSQL's serialisation, or a conditional update's row count)."""
    for attempt in range(RETRIES):
        try:
            with transaction(engine) as db:
                return step(db)
        except (IntegrityError, OperationalError, LostRace) as exc:
            if attempt == RETRIES - 1:
                raise
            _LOGGER.debug("retrying after %s", exc)
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


def now_ms() -> int:
    return int(time.time() * 1000)


def policy_of(db: Session, venue_id: str) -> Policy:
    row = db.get(AlertPolicy, venue_id)
    if row is None:
        return Policy()
    return Policy(
        Level(row.min_severity),
        row.group_wait_s,
        row.repeat_after_s,
        row.escalate_after_s,
        row.email_owner,
        frozenset(row.only_when_open),
        tuple(row.also_email),
    )


def open_at(venue: Venue, ms: int) -> bool:
    return venue.hours is None or is_open(venue.hours, ZoneInfo(venue.timezone), ms)


def record(db: Session, signal: Signal, now_ms: int) -> Step | None:
    """Apply one signal; the change it made, if any."""
    venue = db.get(Venue, signal.venue)
    if venue is None:
        _LOGGER.warning("event for unknown venue %r ignored: %s", signal.venue, signal)
        return None
    key = (signal.venue, signal.subject, signal.check)
    state = db.get(CheckState, key, with_for_update=True)
    if state is None:
        state = CheckState(
            venue_id=signal.venue,
            subject=signal.subject,
            check=signal.check,
            last_ts=signal.ts,
            level=signal.level,
        )
        db.add(state)
        db.flush()  # a second service inserting the same key fails here, and retries
        last_ts = None
    else:
        last_ts = state.last_ts
        if signal.ts > state.last_ts:
            state.last_ts, state.level = signal.ts, signal.level
    alert = db.scalar(
        select(Alert)
        .where(
            Alert.venue_id == signal.venue,
            Alert.subject == signal.subject,
            Alert.check == signal.check,
            Alert.state != State.RESOLVED,
        )
        .with_for_update()
    )
    current = None
    if alert is not None:
        current = Current(State(alert.state), Level(alert.severity), alert.recovering_ts)
    step = lifecycle.on_signal(current, signal, last_ts)
    if step is None:
        return None
    if alert is None:
        alert = Alert(
            venue_id=signal.venue,
            subject=signal.subject,
            check=signal.check,
            state=State.OPEN,
            severity=step.severity,
            opened_ms=signal.ts,
            opened_seen_ms=now_ms,
            last_ts=signal.ts,
            value=signal.value,
            detail=signal.detail,
        )
        db.add(alert)
    alert.last_ts = signal.ts
    if step.change is Change.RECOVERING:
        alert.recovering_ts, alert.recovering_seen_ms = signal.ts, now_ms
    else:
        alert.severity, alert.value, alert.detail = step.severity, signal.value, signal.detail
        alert.recovering_ts = alert.recovering_seen_ms = None
    db.flush()
    history(db, alert, step.change, signal.ts)
    p = policy_of(db, venue.id)
    relevant = policy.relevant(p, alert.check, Level(alert.severity), open_at(venue, signal.ts))
    if policy.tell(step.change, relevant, alert.first_told_ms is not None):
        _to_tell(db, alert, step.change, signal.ts, now_ms)
    return step


def resolve(
    db: Session,
    alert: Alert,
    at_ms: int,
    now_ms: int,
    user_id: int | None = None,
    comment: str | None = None,
) -> None:
    """Resolve an unresolved alert (by its recovery's hold-off, or by a person)."""
    changed = db.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.state != State.RESOLVED)
        .values(state=State.RESOLVED, resolved_ms=at_ms)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise LostRace(f"alert {alert.id} was resolved meanwhile")
    db.refresh(alert)
    history(db, alert, Change.RESOLVED, at_ms, user_id, comment)
    if policy.tell(Change.RESOLVED, True, alert.first_told_ms is not None):
        _to_tell(db, alert, Change.RESOLVED, at_ms, now_ms)


def sweep(db: Session, now_ms: int, resolve_hold_s: float) -> int:
    """Everything the clock makes due; how many alerts it changed."""
    changed = 0
    unresolved = db.scalars(
        select(Alert).where(Alert.state != State.RESOLVED).order_by(Alert.id).with_for_update()
    ).all()
    for alert in unresolved:
        if lifecycle.due_resolution(alert.recovering_seen_ms, now_ms, resolve_hold_s):
            assert alert.recovering_ts is not None
            resolve(db, alert, alert.recovering_ts, now_ms)
            changed += 1
            continue
        if alert.state != State.OPEN or alert.recovering_ts is not None:
            continue
        p = policy_of(db, alert.venue_id)
        # Raised while closed (or below the threshold then): told once it matters; and a
        # warm tap told in the evening is not repeated, nor escalated, through the night.
        relevant = policy.relevant(p, alert.check, Level(alert.severity),
                                   open_at(alert.venue, now_ms))  # fmt: skip
        if not relevant:
            continue
        if alert.first_told_ms is None:
            _to_tell(db, alert, Change.OPENED, alert.last_ts, now_ms)
            changed += 1
        elif alert.escalated_ms is None and policy.escalation_due(p, alert.first_told_ms, now_ms):
            alert.escalated_ms = now_ms
            _to_tell(db, alert, Change.ESCALATED, alert.last_ts, now_ms, OPERATORS)
            changed += 1
        elif policy.reminder_due(p, alert.last_told_ms, now_ms):
            _to_tell(db, alert, Change.REMINDER, alert.last_ts, now_ms)
            changed += 1
    return changed


def history(
    db: Session,
    alert: Alert,
    change: Change,
    at_ms: int,
    user_id: int | None = None,
    comment: str | None = None,
) -> None:
    db.add(
        AlertTransition(
            alert_id=alert.id,
            change=change,
            state=alert.state,
            severity=alert.severity,
            at_ms=at_ms,
            by_user_id=user_id,
            comment=comment,
        )
    )


def _to_tell(
    db: Session, alert: Alert, change: Change, ts: int, now_ms: int, audience: str = VENUE
) -> None:
    if audience == VENUE:
        alert.first_told_ms = alert.first_told_ms or now_ms
        alert.last_told_ms = now_ms
    db.add(
        PendingChange(
            alert_id=alert.id,
            venue_id=alert.venue_id,
            change=change,
            audience=audience,
            ts=ts,
            created_ms=now_ms,
        )
    )
