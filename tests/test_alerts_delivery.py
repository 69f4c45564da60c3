"""The outbox's sending against a real webhook receiver and a real SMTP server: 429 with
Retry-After honoured, 410 disables the endpoint, a permanent refusal or a message failing past
its time is given up into the dead letters; nothing is sent twice under two ids."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from alerts import outbox
from alerts.delivery import Deliverer, retry_after_s
from alerts.settings import AlertsSettings, SmtpSettings
from registry.alert_models import Notification, WebhookEndpoint
from registry.db import engine_for, migrate, transaction
from registry.models import Venue
from tests.alerting import alert_venue
from tests.receivers import SmtpSink, WebhookReceiver, webhook_receiver


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    migrate(url)
    engine = engine_for(url, serialised=True)
    yield engine
    engine.dispose()


def now_ms() -> int:
    return int(time.time() * 1000)


def queue_test_message(engine: Engine, venue: str, hook_id: int) -> str:
    with transaction(engine) as db:
        note = outbox.test_message(db, db.get_one(Venue, venue),
                                   db.get_one(WebhookEndpoint, hook_id), now_ms())  # fmt: skip
        return note.id


def queue_email(engine: Engine, venue: str, to: str) -> str:
    with transaction(engine) as db:
        note = Notification(id=f"msg_test{now_ms()}", venue_id=venue, channel="email", target=to,
                            payload={"subject": "s", "text": "t", "html": "<p>h</p>"},
                            state="pending", attempts=0, next_attempt_ms=now_ms(),
                            created_ms=now_ms())  # fmt: skip
        db.add(note)
        return note.id


def row(engine: Engine, note_id: str) -> Notification:
    with transaction(engine) as db:
        return db.get_one(Notification, note_id)


SETTINGS = AlertsSettings(webhook_timeout_s=1, retry_initial_s=0.1, retry_max_s=0.2,
                          give_up_after_s=3600)  # fmt: skip


def test_429_waits_as_told_then_delivers_once(engine: Engine) -> None:
    with webhook_receiver(WebhookReceiver(script=["429 7"])) as receiver:
        place = alert_venue(engine, "v1", webhook_url=receiver.url)
        receiver.secret = place.webhook_secret
        note_id = queue_test_message(engine, "v1", place.webhook_id)
        sender = Deliverer(engine, SETTINGS, SmtpSettings())
        assert sender.run_once(now_ms()) == 1
        waiting = row(engine, note_id)
        assert waiting.state == "pending" and waiting.last_error == "HTTP 429"
        assert 6_000 <= waiting.next_attempt_ms - now_ms() <= 7_000  # Retry-After: 7
        assert sender.run_once(now_ms()) == 0  # not before its time
        assert sender.run_once(now_ms() + 7_001) == 1
        sender.close()
    assert row(engine, note_id).state == "sent"
    assert list(receiver.unique()) == [note_id] and receiver.bad_signatures == 0


def test_410_disables_the_endpoint_and_the_message_is_a_dead_letter(engine: Engine) -> None:
    with webhook_receiver(WebhookReceiver(script=[410])) as receiver:
        place = alert_venue(engine, "v1", webhook_url=receiver.url)
        note_id = queue_test_message(engine, "v1", place.webhook_id)
        sender = Deliverer(engine, SETTINGS, SmtpSettings())
        sender.run_once(now_ms())
        later = queue_test_message(engine, "v1", place.webhook_id)
        sender.run_once(now_ms())
        sender.close()
    dead = row(engine, note_id)
    assert dead.state == "dead" and "410" in str(dead.last_error)
    assert row(engine, later).state == "dead"  # to a disabled endpoint: not even tried
    assert len(receiver.attempts) == 1
    with transaction(engine) as db:
        hook = db.get_one(WebhookEndpoint, place.webhook_id)
        assert hook.disabled_ms is not None and "410" in str(hook.disabled_reason)


def test_failing_past_its_time_is_given_up(engine: Engine) -> None:
    with webhook_receiver(WebhookReceiver(script=[500] * 100)) as receiver:
        place = alert_venue(engine, "v1", webhook_url=receiver.url)
        note_id = queue_test_message(engine, "v1", place.webhook_id)
        settings = SETTINGS.model_copy(update={"give_up_after_s": 0.5})
        sender = Deliverer(engine, settings, SmtpSettings())
        while row(engine, note_id).state == "pending":
            sender.run_once(now_ms() + 60_000)
        sender.close()
    dead = row(engine, note_id)
    assert dead.state == "dead" and dead.last_error == "HTTP 500" and dead.attempts >= 2
    assert len(set(receiver.attempts)) == 1  # every attempt under the one id


def test_a_refused_recipient_is_a_dead_letter_and_others_are_sent(engine: Engine) -> None:
    with SmtpSink() as smtp:
        alert_venue(engine, "v1")
        smtp.refused.add("gone@v1.example")
        gone = queue_email(engine, "v1", "gone@v1.example")
        time.sleep(0.002)  # the test ids are made of the time
        fine = queue_email(engine, "v1", "owner@v1.example")
        smtp_settings = SmtpSettings(host="127.0.0.1", port=smtp.port, starttls=False)
        sender = Deliverer(engine, SETTINGS, smtp_settings)
        assert sender.run_once(now_ms()) == 2
        sender.close()
    assert row(engine, gone).state == "dead" and "refused" in str(row(engine, gone).last_error)
    assert row(engine, fine).state == "sent"
    [mail] = smtp.messages
    assert mail["Message-ID"] == f"<{fine}@tapsense>"


def test_a_recipient_the_server_defers_is_tried_again_not_given_up(engine: Engine) -> None:
    """451 ("try again later": greylisting, a full mailbox) is not a refusal for good."""
    with SmtpSink() as smtp:
        alert_venue(engine, "v1")
        smtp.busy = 1
        note = queue_email(engine, "v1", "owner@v1.example")
        smtp_settings = SmtpSettings(host="127.0.0.1", port=smtp.port, starttls=False)
        sender = Deliverer(engine, SETTINGS, smtp_settings)
        sender.run_once(now_ms())
        deferred = row(engine, note)
        assert deferred.state == "pending" and "451" in str(deferred.last_error)
        sender.run_once(now_ms() + 3_600_000)
        sender.close()
    assert row(engine, note).state == "sent"
    assert [m["Message-ID"] for m in smtp.messages] == [f"<{note}@tapsense>"]


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_s("120") == 120.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_no_smtp_server_configured_is_retried_not_lost(engine: Engine) -> None:
    alert_venue(engine, "v1")
    note_id = queue_email(engine, "v1", "owner@v1.example")
    sender = Deliverer(engine, SETTINGS, SmtpSettings())
    sender.run_once(now_ms())
    sender.close()
    waiting = row(engine, note_id)
    assert waiting.state == "pending" and "smtp.host" in str(waiting.last_error)
    with transaction(engine) as db:
        assert db.scalar(select(Notification.id).where(Notification.state == "dead")) is None
