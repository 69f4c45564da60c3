"""The alerts' database steps on SQLite and PostgreSQL: one unresolved alert per key, however
events come (again, late, or to two services at once); grouping; resolution after the hold-off.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from functools import partial

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from alerts import admin, outbox, store
from alerts.admin import PolicyIn
from alerts.lifecycle import Signal
from registry.alert_models import Alert, AlertTransition, Notification, PendingChange
from registry.db import engine_for, migrate, transaction
from registry.hours import WEEKDAYS
from registry.models import Venue
from tests.alerting import T0, alert_venue, count
from timeseries.events import Check, Level

HOLD_S = 300


@pytest.fixture
def engine(registry_url: str) -> Iterator[Engine]:
    migrate(registry_url)
    engine = engine_for(registry_url, serialised=True)
    yield engine
    engine.dispose()


def warm(venue: str, tap: int, level: Level, ts: int) -> Signal:
    return Signal(venue, f"tap-{tap}", Check.WARM_BEER, level, ts, 9.5, ts - 120_000)


def cooler_failure(venue: str) -> list[Signal]:
    """Six taps warm, the cooler check fires, then everything recovers."""
    signals = [warm(venue, tap, Level.WARNING, T0 + tap * 1000) for tap in range(1, 7)]
    signals += [Signal(venue, "", Check.COOLER_FAILURE, Level.CRITICAL, T0 + 10_000, 1.0, 6)]
    signals += [warm(venue, tap, Level.CRITICAL, T0 + 600_000 + tap) for tap in range(1, 7)]
    signals += [warm(venue, tap, Level.OK, T0 + 3_600_000 + tap) for tap in range(1, 7)]
    signals += [Signal(venue, "", Check.COOLER_FAILURE, Level.OK, T0 + 3_700_000, 0.0, 0)]
    return signals


def record_all(engine: Engine, signals: list[Signal], now: int) -> None:
    for s in signals:
        store.retrying(engine, partial(store.record, signal=s, now_ms=now))


def history(engine: Engine) -> list[tuple[str, str, str, str]]:
    with transaction(engine) as db:
        rows = db.execute(
            select(Alert.subject, Alert.check, AlertTransition.change, AlertTransition.severity)
            .join(AlertTransition, AlertTransition.alert_id == Alert.id)
            .order_by(Alert.subject, Alert.check, AlertTransition.at_ms)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_database_refuses_a_second_unresolved_alert(engine: Engine) -> None:
    alert_venue(engine, "v1")
    row = dict(venue_id="v1", subject="tap-1", check="warm_beer", severity="warning",
               opened_ms=T0, opened_seen_ms=T0, last_ts=T0, value=9.0, detail=0.0)  # fmt: skip
    with transaction(engine) as db:
        db.add(Alert(state="resolved", **row))
        db.add(Alert(state="open", **row))
    with pytest.raises(IntegrityError), transaction(engine) as db:
        db.add(Alert(state="acknowledged", **row))


def test_redelivered_events_change_nothing(engine: Engine) -> None:
    alert_venue(engine, "v1")
    signals = cooler_failure("v1")
    record_all(engine, signals, T0)
    once = history(engine)
    record_all(engine, signals, T0)  # all again, as after a crash before the acks
    record_all(engine, random.Random(1).sample(signals, len(signals)), T0)  # and out of order
    assert history(engine) == once
    with transaction(engine) as db:
        assert count(db, Alert) == 7  # six taps and the cooler
        assert count(db, PendingChange) == 7 + 6  # opened, and raised to critical


def test_two_services_at_once_make_each_change_once(engine: Engine) -> None:
    alert_venue(engine, "v1")
    signals = cooler_failure("v1")
    record_all(engine, signals, T0)
    expected = history(engine)
    with transaction(engine) as db:
        for model in (PendingChange, AlertTransition, Alert):
            db.query(model).delete()
        db.execute(store.CheckState.__table__.delete())  # type: ignore[attr-defined]
    # Both "services" get every event (a shared subscription gives each to one of them; a
    # redelivery after a reconnect can give it to the other as well): they race on each.
    threads = [threading.Thread(target=record_all, args=(engine, signals, T0)) for _ in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert history(engine) == expected
    with transaction(engine) as db:
        assert count(db, Alert) == 7
        assert count(db, PendingChange) == 7 + 6


def test_a_cooler_failure_is_one_message_per_recipient_listing_every_tap(engine: Engine) -> None:
    place = alert_venue(engine, "v1", language="nl")
    record_all(engine, cooler_failure("v1")[:7], T0)
    with transaction(engine) as db:
        assert outbox.group(db, T0 + 29_000) == 0  # the grouping wait (30 s) is not over
    with transaction(engine) as db:
        assert outbox.group(db, T0 + 30_000) == 2  # the owner's e-mail and the webhook
        notes = db.scalars(select(Notification).order_by(Notification.channel)).all()
    mail, hook = notes
    assert (mail.channel, mail.target) == ("email", place.owner_email)
    assert mail.payload["subject"] == "Café v1: 7 meldingen"
    assert str(mail.payload["text"]).count("IPA op tap-") == 6
    assert "de koeling lijkt te falen" in str(mail.payload["text"])
    assert hook.target == str(place.webhook_id)
    assert sorted(a["subject"] for a in hook.payload["alerts"]) == [  # type: ignore[attr-defined]
        "", "tap-1", "tap-2", "tap-3", "tap-4", "tap-5", "tap-6"]  # fmt: skip


def test_the_policy_names_who_else_is_told(engine: Engine) -> None:
    place = alert_venue(engine, "v1")
    with transaction(engine) as db:
        also = ["bar@v1.example", "chef@v1.example"]
        admin.set_policy(db, "v1", PolicyIn(email_owner=False, group_wait_s=0, also_email=also))
    record_all(engine, cooler_failure("v1")[:7], T0)
    with transaction(engine) as db:
        assert outbox.group(db, T0) == 3
        targets = sorted(n.target for n in db.scalars(select(Notification)))
    assert targets == sorted(["bar@v1.example", "chef@v1.example", str(place.webhook_id)])


def test_recovery_resolves_after_the_hold_off_and_is_told_once(engine: Engine) -> None:
    alert_venue(engine, "v1")
    signals = cooler_failure("v1")
    record_all(engine, signals[:13], T0)
    with transaction(engine) as db:
        outbox.group(db, T0 + 60_000)
    record_all(engine, signals[13:], T0 + 100_000)  # the recoveries, heard at T0 + 100 s
    with transaction(engine) as db:
        assert store.sweep(db, T0 + 100_000 + HOLD_S * 1000 - 1, HOLD_S) == 0
    # A tap flaps meanwhile: its alert stays open, the others resolve.
    record_all(engine, [warm("v1", 1, Level.WARNING, T0 + 3_800_000)], T0 + 200_000)
    with transaction(engine) as db:
        assert store.sweep(db, T0 + 100_000 + HOLD_S * 1000, HOLD_S) == 6
        assert count(db, Alert, Alert.state == "resolved") == 6
        assert outbox.group(db, T0 + 500_000) == 2
        resolved = db.scalars(select(Notification).where(Notification.channel == "email")
                              .order_by(Notification.created_ms.desc())).first()  # fmt: skip
        assert resolved is not None
        assert resolved.payload["subject"] == "Café v1: 6 meldingen opgelost"
    with transaction(engine) as db:  # nothing more to do: each resolution told once
        assert store.sweep(db, T0 + 900_000, HOLD_S) == 0
        assert outbox.group(db, T0 + 900_000) == 0


def test_what_matters_only_while_open_waits_for_the_opening(engine: Engine) -> None:
    alert_venue(engine, "v1")
    with transaction(engine) as db:  # open 16:00-01:00 every day (Amsterdam)
        db.get_one(Venue, "v1").hours = {day: "16:00-01:00" for day in WEEKDAYS}
    three_am = T0 + 10 * 3_600_000  # T0 is 17:00 in Amsterdam: 03:00 the next night
    record_all(engine, [warm("v1", 1, Level.WARNING, three_am)], three_am)
    with transaction(engine) as db:
        assert count(db, PendingChange) == 0  # warm beer while closed: nobody is told
        assert store.sweep(db, three_am + 3_600_000, HOLD_S) == 0
        opening = three_am + 13 * 3_600_000  # 16:00
        assert store.sweep(db, opening, HOLD_S) == 1  # told when the doors open
        assert store.sweep(db, opening + 9 * 3_600_000 + 1, HOLD_S) == 0  # 01:00+: no reminder
        assert [c.change for c in db.scalars(select(PendingChange))] == ["opened"]


def test_unacknowledged_alerts_are_repeated_and_escalated(engine: Engine) -> None:
    place = alert_venue(engine, "v1")
    record_all(engine, [warm("v1", 1, Level.WARNING, T0)], T0)
    with transaction(engine) as db:
        outbox.group(db, T0 + 30_000)
        assert store.sweep(db, T0 + 3_600_000, HOLD_S) == 1  # escalated after an hour
        outbox.group(db, T0 + 3_700_000)
        to_ops = db.scalars(select(Notification).where(
            Notification.target == place.operator_email)).all()  # fmt: skip
        assert len(to_ops) == 1 and "Nobody at the venue has acknowledged" in str(
            to_ops[0].payload["text"]
        )
        assert store.sweep(db, T0 + 4 * 3_600_000, HOLD_S) == 1  # the four-hourly reminder
        assert store.sweep(db, T0 + 4 * 3_600_000 + 1, HOLD_S) == 0
