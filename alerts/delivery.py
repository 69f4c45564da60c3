"""Sending the outbox: webhooks (Standard Webhooks) and e-mail (SMTP), at least once, under
an id that is the same on every attempt, so that "exactly once" holds wherever the receiver
keeps the ids it has seen (the Standard Webhooks specification asks receivers to).

A notification is claimed with a lease (a conditional update: one service sends it), sent
outside any transaction, and settled by the lease's holder: sent, retried later (exponential
backoff with jitter, or the receiver's `Retry-After`), or given up into the dead letters (410
Gone, which also disables the endpoint; a permanent SMTP refusal; or `give_up_after_s` of
failures). A service killed mid-send leaves the lease to run out; then it is sent again, with
the same id.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from alerts.outbox import DEAD, EMAIL, PENDING, SENT, WEBHOOK
from alerts.settings import AlertsSettings, SmtpSettings
from registry.alert_models import Notification, WebhookEndpoint
from registry.db import transaction

_LOGGER = logging.getLogger(__name__)

CLAIM_AT_ONCE = 20
ERROR_TEXT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: bool = False
    error: str | None = None
    retry_after_s: float | None = None  # the receiver said when
    permanent: bool = False  # no point trying again
    disable_endpoint: bool = False


def send_email(smtp: SmtpSettings, message: EmailMessage) -> Outcome:
    """One message through the configured server (From and Date filled in here); what became
    of it. The reports send through this too."""
    if smtp.host is None:
        return Outcome(error="no SMTP server configured (smtp.host)")
    message["From"] = smtp.sender
    message["Date"] = email.utils.formatdate(localtime=False)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as server:
            if smtp.starttls:
                server.starttls()
            if smtp.username:
                server.login(smtp.username, smtp.password or "")
            server.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        # 4xx: the server asks to try again later (greylisting, a full mailbox); 5xx: never.
        permanent = all(code >= 500 for code, _ in exc.recipients.values())
        return Outcome(error=f"recipient refused: {exc.recipients}", permanent=permanent)
    except smtplib.SMTPResponseException as exc:
        permanent = 500 <= exc.smtp_code < 600
        return Outcome(error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent)
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}")
    return Outcome(sent=True)


def claim_email(db: Session, row: Any, key: Sequence[Any], next_ms: int | None,
                until_ms: int) -> bool:  # fmt: skip
    """Claim the e-mail of one row that e-mails a document (a monthly report, a coupon sheet:
    columns emailed_ms and next_email_ms) until `until_ms`, by a conditional update that only
    one of several processes makes; False: another has it, or it went."""
    taken = db.execute(
        update(row).where(*key, row.next_email_ms == next_ms, row.emailed_ms.is_(None))
        .values(next_email_ms=until_ms)
    )  # fmt: skip
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def email_settlement(outcome: Outcome, attempts: int, now_ms: int, retry_s: float,
                     max_retry_s: float = 86_400.0) -> dict[str, object]:  # fmt: skip
    """What a row that e-mails one document (a monthly report, a coupon sheet: columns
    emailed_ms, email_attempts, next_email_ms, last_error) becomes after an attempt: sent;
    given up for good (no next attempt); or tried again after a doubling wait."""
    if outcome.sent:
        return {"emailed_ms": now_ms, "email_attempts": attempts + 1, "last_error": None}
    if outcome.permanent:
        return {"next_email_ms": None, "email_attempts": attempts + 1,
                "last_error": f"e-mail given up: {outcome.error}"[:1000]}  # fmt: skip
    wait_s = min(retry_s * 2**attempts, max_retry_s)
    return {"next_email_ms": now_ms + int(wait_s * 1000), "email_attempts": attempts + 1,
            "last_error": f"e-mail: {outcome.error}"[:1000]}  # fmt: skip


def backoff_s(settings: AlertsSettings, attempts: int) -> float:
    """Full-ish jitter: between half and all of the doubled delay, so that receivers that
    came back are not hit by every sender at once."""
    delay = min(settings.retry_max_s, settings.retry_initial_s * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)


def retry_after_s(value: str | None) -> float | None:
    """`Retry-After` as seconds (RFC 9110: delay-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Deliverer:
    def __init__(self, engine: Engine, settings: AlertsSettings, smtp: SmtpSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._smtp = smtp
        self._http = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def run_once(self, now_ms: int) -> int:
        """Send what is due; how many were tried."""
        tried = 0
        for note, lease in self._claim(now_ms):
            outcome = self._send(note)
            self._settle(note, lease, outcome)
            tried += 1
        return tried

    def _claim(self, now_ms: int) -> list[tuple[Notification, int]]:
        lease = now_ms + int(self._settings.lease_s * 1000)
        free = or_(Notification.lease_until_ms.is_(None), Notification.lease_until_ms < now_ms)
        with transaction(self._engine) as db:
            due = db.scalars(
                select(Notification.id)
                .where(Notification.state == PENDING, Notification.next_attempt_ms <= now_ms, free)
                .order_by(Notification.next_attempt_ms)
                .limit(CLAIM_AT_ONCE)
            ).all()
        claimed = []
        for note_id in due:
            with transaction(self._engine) as db:
                won = db.execute(
                    update(Notification)
                    .where(Notification.id == note_id, Notification.state == PENDING, free)
                    .values(lease_until_ms=lease, attempts=Notification.attempts + 1)
                ).rowcount  # type: ignore[attr-defined]
                if won == 1:
                    claimed.append((db.get_one(Notification, note_id), lease))
        return claimed

    def _send(self, note: Notification) -> Outcome:
        try:
            if note.channel == WEBHOOK:
                return self._webhook(note)
            if note.channel == EMAIL:
                return self._email(note)
            return Outcome(error=f"unknown channel {note.channel!r}", permanent=True)
        except Exception as exc:  # a bug must not stop the outbox: retried, and logged
            _LOGGER.exception("sending %s failed unexpectedly", note.id)
            return Outcome(error=f"{type(exc).__name__}: {exc}")

    def _webhook(self, note: Notification) -> Outcome:
        with transaction(self._engine) as db:
            hook = db.get(WebhookEndpoint, int(note.target))
        if hook is None or hook.disabled_ms is not None:
            return Outcome(error="the webhook endpoint is gone or disabled", permanent=True)
        body = json.dumps(note.payload, ensure_ascii=False, separators=(",", ":"))
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": note.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(hook.secret).sign(note.id, now, body),
            "user-agent": "Tapsense-Webhooks/1",
        }
        try:
            response = self._http.post(hook.url, content=body.encode(), headers=headers)
        except httpx.TimeoutException:
            return Outcome(error=f"no answer within {self._settings.webhook_timeout_s:g} s")
        except httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(sent=True)
        if status == 410:
            return Outcome(
                error="410 Gone: the receiver asked for no more",
                permanent=True,
                disable_endpoint=True,
            )
        wait = retry_after_s(response.headers.get("retry-after")) if status in (429, 503) else None
        return Outcome(error=f"HTTP {status}", retry_after_s=wait)

    def _email(self, note: Notification) -> Outcome:
        message = EmailMessage()
        message["To"] = note.target
        message["Subject"] = str(note.payload["subject"])
        message["Message-ID"] = f"<{note.id}@tapsense>"
        message.set_content(str(note.payload["text"]))
        message.add_alternative(str(note.payload["html"]), subtype="html")
        return send_email(self._smtp, message)

    def _settle(self, note: Notification, lease: int, outcome: Outcome) -> None:
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        ours = (Notification.id == note.id, Notification.lease_until_ms == lease)
        values: dict[str, object] = {"lease_until_ms": None}
        if outcome.sent:
            values |= {"state": SENT, "sent_ms": now_ms, "last_error": None}
            _LOGGER.info("%s %s to %s sent", note.channel, note.id, note.target)
        else:
            error = (outcome.error or "failed")[:ERROR_TEXT_LIMIT]
            expired = now_ms - note.created_ms >= self._settings.give_up_after_s * 1000
            values["last_error"] = error
            if outcome.permanent or expired:
                values |= {"state": DEAD, "dead_ms": now_ms}
                _LOGGER.warning(
                    "%s %s to %s given up after %d attempts: %s",
                    note.channel,
                    note.id,
                    note.target,
                    note.attempts,
                    error,
                )
            else:
                wait = outcome.retry_after_s
                wait = backoff_s(self._settings, note.attempts) if wait is None else wait
                values["next_attempt_ms"] = now_ms + int(wait * 1000)
                _LOGGER.info(
                    "%s %s to %s failed (%s); next attempt in %.1f s",
                    note.channel,
                    note.id,
                    note.target,
                    error,
                    wait,
                )
        with transaction(self._engine) as db:
            db.execute(update(Notification).where(*ours).values(**values))
            if outcome.disable_endpoint:
                db.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id == int(note.target))
                    .values(disabled_ms=now_ms, disabled_reason=outcome.error)
                )
