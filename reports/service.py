"""Making every venue's monthly report once, archiving it and e-mailing it to the owner.

Once per venue and month however many services run: the run record's primary key (venue,
month) lets one insert win; a claim carries a lease, and taking over an expired claim or a
failed run due for another try is a conditional update only one process can make. Finishing
is conditional on still holding the claim. The e-mail is claimed the same way before it is
sent, and carries a Message-ID made of venue and month: a service killed between sending and
recording the send sends again under the same id (the alerts' e-mail has the same limit).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, Result, or_, select, update
from sqlalchemy.exc import IntegrityError

from alerts.delivery import claim_email, email_settlement, send_email
from alerts.outbox import owner_contact
from coupons.delivery import send_sheets
from registry.access import now_ms as clock_ms
from registry.db import open_registry, transaction
from registry.models import Venue
from registry.report_models import ReportRun
from reports import query, render
from reports.metrics import month_shifted
from reports.model import Report
from reports.render import Words
from reports.settings import ReportsSetup
from texts import DEFAULT_LANGUAGE, Texts
from timeseries.influx import InfluxError, InfluxQL

_LOGGER = logging.getLogger(__name__)

RUNNING, DONE, FAILED = "running", "done", "failed"
SCHEDULE = "schedule"
READY_LINE = "reports service ready"
MAX_RETRY_S = 86_400.0


def due_month(zone: ZoneInfo, now_ms: int, margin_ms: int) -> str:
    """The latest month that closed in `zone` at least `margin_ms` before `now_ms`."""
    local = datetime.fromtimestamp((now_ms - margin_ms) / 1000, UTC).astimezone(zone)
    year, month = month_shifted(local.year, local.month, -1)  # the one before we are in
    return f"{year:04d}-{month:02d}"


def _insert_claim(engine: Engine, venue_id: str, month: str, by: str, now_ms: int,
                  lease_ms: int) -> bool:  # fmt: skip
    """The run record made by this process (the first to ask), or False: it exists."""
    try:
        with transaction(engine) as db:
            run = ReportRun(venue_id=venue_id, month=month, state=RUNNING, requested_by=by,
                            claimed_ms=now_ms, attempts=1)  # fmt: skip
            run.lease_until_ms = now_ms + lease_ms
            db.add(run)
        return True
    except IntegrityError:
        return False


def _take(engine: Engine, venue_id: str, month: str, by: str, now_ms: int, lease_ms: int,
          takeable: ColumnElement[bool]) -> int | None:  # fmt: skip
    """Claim an existing run record if it is `takeable`: a conditional update, which only one
    of several processes asking at once can make."""
    with transaction(engine) as db:
        taken = db.execute(
            update(ReportRun)
            .where(ReportRun.venue_id == venue_id, ReportRun.month == month, takeable)
            .values(state=RUNNING, requested_by=by, claimed_ms=now_ms,
                    lease_until_ms=now_ms + lease_ms, attempts=ReportRun.attempts + 1)
        )  # fmt: skip
    return now_ms if _changed(taken) else None


def claim(
    engine: Engine, venue_id: str, month: str, by: str, now_ms: int, lease_ms: int
) -> int | None:
    """This process's claim on making a venue-month's report (its token), or None: another
    has it, or it is done. A claim whose lease ran out (its process died) and a failed run
    whose wait is over are taken over."""
    if _insert_claim(engine, venue_id, month, by, now_ms, lease_ms):
        return now_ms
    expired = (ReportRun.state != DONE) & (ReportRun.lease_until_ms <= now_ms)
    return _take(engine, venue_id, month, by, now_ms, lease_ms, expired)


def reclaim(
    engine: Engine, venue_id: str, month: str, by: str, now_ms: int, lease_ms: int
) -> int | None:
    """An operator's regeneration: claims a venue-month done or failed (or never made); None
    while another process is making it."""
    if _insert_claim(engine, venue_id, month, by, now_ms, lease_ms):
        return now_ms
    idle = or_(ReportRun.state != RUNNING, ReportRun.lease_until_ms <= now_ms)
    return _take(engine, venue_id, month, by, now_ms, lease_ms, idle)


def _changed(result: Result[Any]) -> bool:
    """Whether a conditional update changed its one row (it lost the race if not)."""
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _ours(venue_id: str, month: str, token: int) -> tuple[ColumnElement[bool], ...]:
    return (
        ReportRun.venue_id == venue_id,
        ReportRun.month == month,
        ReportRun.state == RUNNING,
        ReportRun.claimed_ms == token,
    )


def make(
    engine: Engine,
    influx: InfluxQL,
    venue_id: str,
    month: str,
    token: int,
    *,
    email: bool,
    retry_s: float,
    cache: query.MonthCache | None = None,
) -> Report | None:
    """Compute, render and archive a claimed venue-month's report; None if it failed (the run
    is marked failed, to be tried again after a backoff) or the claim was lost."""
    started = time.monotonic()
    try:
        with transaction(engine) as db:
            venue = db.get(Venue, venue_id)
            if venue is None:
                return None
            address, language = owner_contact(db, venue)
            report = query.report(db, influx, venue, month, clock_ms(), cache)
        pdf = render.to_pdf(report, language)
    except (InfluxError, OSError, ValueError) as exc:
        _fail(engine, venue_id, month, token, f"{type(exc).__name__}: {exc}", retry_s)
        _LOGGER.warning("report %s %s failed: %s; tried again later", venue_id, month, exc)
        return None
    now = clock_ms()
    with transaction(engine) as db:
        done = db.execute(
            update(ReportRun)
            .where(*_ours(venue_id, month, token))
            .values(
                state=DONE,
                model=report.model_dump(mode="json"),
                pdf=pdf,
                pdf_language=language,
                generated_ms=now,
                last_error=None,
                lease_until_ms=now,
                email_to=address if email else None,
                next_email_ms=now if email and address else None,
            )
        )
    if not _changed(done):
        _LOGGER.warning(
            "report %s %s: claim lost while making it; left to the other", venue_id, month
        )
        return None
    _LOGGER.info(
        "report %s %s made in %.2f s (%.1f l, %d tips)%s",
        venue_id,
        month,
        time.monotonic() - started,
        report.litres,
        len(report.tips),
        f"; to be e-mailed to {address}" if email and address else "",
    )
    return report


def _fail(
    engine: Engine, venue_id: str, month: str, token: int, error: str, retry_s: float
) -> None:
    with transaction(engine) as db:
        run = db.get(ReportRun, (venue_id, month))
        attempts = run.attempts if run is not None else 1
        wait_ms = int(min(retry_s * 2 ** (attempts - 1), MAX_RETRY_S) * 1000)
        db.execute(
            update(ReportRun)
            .where(*_ours(venue_id, month, token))
            .values(state=FAILED, last_error=error[:1000], lease_until_ms=clock_ms() + wait_ms)
        )


def email_message(report: Report, language: str, pdf: bytes, to: str) -> EmailMessage:
    t = Texts(language, report.timezone)
    w = Words(t)
    month = w.month(report.month)
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = t._(
        "Tapsense report %(month)s: %(venue)s", month=month, venue=report.venue_name
    )
    message["Message-ID"] = f"<report-{report.venue}-{report.month}@tapsense>"
    lines = [
        t._(
            "Your Tapsense report for %(venue)s, %(month)s, is attached.",
            venue=report.venue_name,
            month=month,
        )
    ]
    if report.taps and report.has_data:
        lines.append(
            t._(
                "Sold: %(litres)s (%(change)s against the previous month).",
                litres=w.litres(report.litres),
                change=w.change(report.trend.previous_month_change),
            )
        )
        if report.tips:
            lines.append(t._("First tip: %(tip)s", tip=render.tip_text(w, report.tips[0])))
    message.set_content("\n\n".join(lines) + "\n")
    message.add_attachment(
        pdf,
        maintype="application",
        subtype="pdf",
        filename=f"tapsense-{report.venue}-{report.month}.pdf",
    )
    return message


def send_emails(engine: Engine, setup: ReportsSetup, now_ms: int) -> int:
    """E-mail the reports made and not yet sent; how many went out."""
    with transaction(engine) as db:
        due = db.execute(
            select(ReportRun.venue_id, ReportRun.month, ReportRun.next_email_ms).where(
                ReportRun.state == DONE,
                ReportRun.emailed_ms.is_(None),
                ReportRun.email_to.is_not(None),
                ReportRun.next_email_ms <= now_ms,
            )
        ).all()
    lease_ms = int(setup.reports.lease_s * 1000)
    sent = 0
    for venue_id, month, next_ms in due:
        key = (ReportRun.venue_id == venue_id, ReportRun.month == month)
        with transaction(engine) as db:
            taken = claim_email(db, ReportRun, key, next_ms, now_ms + lease_ms)
            run = db.get(ReportRun, (venue_id, month)) if taken else None
            if run is None or run.model is None or run.pdf is None or run.email_to is None:
                continue
            report, pdf, to = Report.model_validate(run.model), run.pdf, run.email_to
            language, attempts = run.pdf_language or DEFAULT_LANGUAGE, run.email_attempts
        outcome = send_email(setup.smtp, email_message(report, language, pdf, to))
        values = email_settlement(outcome, attempts, clock_ms(), setup.reports.retry_s, MAX_RETRY_S)
        if outcome.sent:
            sent += 1
            _LOGGER.info("report %s %s e-mailed to %s", venue_id, month, to)
        else:
            what = "given up" if outcome.permanent else "tried again later"
            _LOGGER.warning("report %s %s: e-mail to %s not sent: %s (%s)", venue_id, month, to,
                            outcome.error, what)  # fmt: skip
        with transaction(engine) as db:
            db.execute(update(ReportRun).where(*key).values(**values))
    return sent


class ReportsService:
    def __init__(self, setup: ReportsSetup) -> None:
        self.setup = setup
        self.engine = open_registry(setup.registry_url)
        self.influx = InfluxQL(setup.influx)

    def close(self) -> None:
        self.influx.close()
        self.engine.dispose()

    def due(self, as_of_ms: int) -> list[tuple[str, str]]:
        """(venue, month) of every report due as of `as_of_ms` and neither done nor claimed
        (a claim's lease, and a failed run's wait, run on the real clock)."""
        margin_ms = int(self.setup.reports.margin_h * 3_600_000)
        now = clock_ms()
        with transaction(self.engine) as db:
            venues = db.execute(select(Venue.id, Venue.timezone).order_by(Venue.id)).all()
            wanted = {v: due_month(ZoneInfo(tz), as_of_ms, margin_ms) for v, tz in venues}
            rows = db.execute(
                select(ReportRun.venue_id, ReportRun.month).where(
                    ReportRun.month.in_(set(wanted.values())),
                    or_(ReportRun.state == DONE, ReportRun.lease_until_ms > now),
                )
            ).all()
        settled = {(venue, month) for venue, month in rows}
        return [(v, m) for v, m in wanted.items() if (v, m) not in settled]

    def run_once(self, as_of_ms: int | None = None) -> tuple[int, int]:
        """Make the reports due (as of `as_of_ms`: now unless a test says otherwise) and send
        the e-mails due: (made, e-mailed)."""
        settings = self.setup.reports
        made = 0
        caches: dict[str, query.MonthCache] = {}  # a region's venues read once, not once each
        for venue_id, month in self.due(clock_ms() if as_of_ms is None else as_of_ms):
            lease_ms = int(settings.lease_s * 1000)
            token = claim(self.engine, venue_id, month, SCHEDULE, clock_ms(), lease_ms)
            if token is None:
                continue
            report = make(self.engine, self.influx, venue_id, month, token,
                          email=settings.email, retry_s=settings.retry_s,
                          cache=caches.setdefault(month, query.MonthCache()))  # fmt: skip
            made += report is not None
        sent = 0
        if settings.email:
            sent = send_emails(self.engine, self.setup, clock_ms())
            sent += send_sheets(self.engine, self.setup.smtp, clock_ms(),
                                int(settings.lease_s * 1000), settings.retry_s)  # fmt: skip
        return made, sent

    def run(self, stop: threading.Event, *, once: bool = False) -> None:
        _LOGGER.info(
            "%s: reports %.0f h after each venue's month closes, looking every %.0f s",
            READY_LINE,
            self.setup.reports.margin_h,
            self.setup.reports.tick_s,
        )
        try:
            while not stop.is_set():
                made, sent = self.run_once()
                if made or sent:
                    _LOGGER.info("reports: %d made, %d e-mailed", made, sent)
                if once:
                    return
                stop.wait(self.setup.reports.tick_s)
        finally:
            self.close()
