"""The venue's display: its unresolved alerts, published retained on its MQTT downlink
(`edge.wire.alerts_topic`) whenever they change, so that a display that (re)connects shows the
truth at once.

Every service publishes what it finds changed in the database (its history grows), so with
two services the last word may come from either; `as_of` (the newest history row) lets a
display keep the newest, and each service publishes every venue again every `REFRESH_S`, so
a stale retained state cannot outlive a refresh.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts import messages
from alerts.lifecycle import Change, State
from alerts.outbox import item_of, venue_language
from edge.wire import DisplayAlert, VenueAlerts
from registry.alert_models import Alert, AlertTransition
from registry.models import Venue
from texts import Texts

REFRESH_S = 60.0


def newest_change(db: Session) -> int:
    return db.scalar(select(func.max(AlertTransition.id))) or 0


def changed_venues(db: Session, after: int) -> set[str]:
    """Venues whose alerts changed after history row `after` (0: every venue with alerts)."""
    rows = db.scalars(
        select(Alert.venue_id).join(AlertTransition, AlertTransition.alert_id == Alert.id)
        .where(AlertTransition.id > after).distinct()
    )  # fmt: skip
    return set(rows)


def state_of(db: Session, venue_id: str, as_of: int) -> VenueAlerts | None:
    venue = db.get(Venue, venue_id)
    if venue is None:
        return None
    language = venue_language(db, venue)
    t = Texts(language, venue.timezone)
    shown = []
    unresolved = db.scalars(
        select(Alert).where(Alert.venue_id == venue_id, Alert.state != State.RESOLVED)
        .order_by(Alert.severity, Alert.opened_ms)  # "critical" sorts before "warning"
    )  # fmt: skip
    for alert in unresolved:
        line = messages.line(t, item_of(db, alert, Change.OPENED, alert.last_ts))
        shown.append(DisplayAlert(id=alert.id, subject=alert.subject, check=alert.check,
                                  severity=alert.severity, state=alert.state,  # type: ignore[arg-type]
                                  opened_ms=alert.opened_ms, title=line.title,
                                  text=line.headline, remedy=line.remedy))  # fmt: skip
    return VenueAlerts(v=1, as_of=as_of, language=language, alerts=shown)
