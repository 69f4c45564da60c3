"""Monthly reports: a venue's reports by month, each month as JSON, HTML and PDF, and an
operator's regeneration. Tenant-scoped through the venue.

A month the reports service has made is served from its archive (the same figures the owner
was e-mailed); any other month, the current one included, is computed on demand and not kept.
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine, select

from api.deps import Db, InfluxDep, Operator, Person, VisibleVenue
from api.problems import PROBLEM_RESPONSES
from registry import access
from registry.models import User, Venue
from registry.report_models import ReportRun
from reports import query, render, service
from reports.metrics import month_bounds
from reports.model import Report
from texts import DEFAULT_LANGUAGE, LANGUAGES
from timeseries.influx import InfluxError

router = APIRouter(prefix="/venues", tags=["reports"], responses=PROBLEM_RESPONSES)

MonthPath = Annotated[
    str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM, in the venue's time zone")
]
LanguageQuery = Annotated[
    Literal[LANGUAGES] | None,  # type: ignore[valid-type]
    Query(description="en or nl (default: the caller's language)"),
]
# A regeneration holds its claim this long at most (a report takes seconds to make).
REGENERATE_LEASE_MS = 600_000


class ReportRunOut(BaseModel):
    month: str
    state: str = Field(description="running | done | failed")
    requested_by: str = Field(description='"schedule" or who regenerated it')
    generated_ms: int | None
    emailed_ms: int | None
    email_to: str | None
    last_error: str | None


def _run_out(run: ReportRun) -> ReportRunOut:
    return ReportRunOut(month=run.month, state=run.state, requested_by=run.requested_by,
                        generated_ms=run.generated_ms, emailed_ms=run.emailed_ms,
                        email_to=run.email_to, last_error=run.last_error)  # fmt: skip


def _month(month: str) -> tuple[int, int]:
    try:
        return query.month_of(month)
    except ValueError as exc:
        raise access.Invalid(str(exc)) from exc


def _report(db: Db, influx: InfluxDep, venue: Venue, month: str) -> Report:
    _month(month)
    run = db.get(ReportRun, (venue.id, month))
    if run is not None and run.state == service.DONE and run.model is not None:
        return Report.model_validate(run.model)
    try:
        return query.report(db, influx, venue, month, access.now_ms())
    except InfluxError as exc:
        raise access.Unavailable(f"InfluxDB: {exc}") from exc


def _language(db: Db, who: Person, language: str | None) -> str:
    if language is not None:
        return language
    user = db.get(User, who.user_id) if who.user_id is not None else None
    return user.language if user is not None else DEFAULT_LANGUAGE


@router.get("/{venue}/reports", response_model=list[ReportRunOut])
def list_reports(db: Db, venue: VisibleVenue) -> list[ReportRunOut]:
    """The months the reports service made (or is making) for this venue, newest first. Any
    month can be read below, made or not."""
    runs = db.scalars(
        select(ReportRun).where(ReportRun.venue_id == venue.id).order_by(ReportRun.month.desc())
    )
    return [_run_out(run) for run in runs]


@router.get("/{venue}/reports/{month}", response_model=Report)
def get_report(db: Db, influx: InfluxDep, venue: VisibleVenue, month: MonthPath) -> Report:
    """The venue-month's report as data: every figure, and the tips with the figures behind
    them (words are the HTML's and PDF's)."""
    return _report(db, influx, venue, month)


@router.get(
    "/{venue}/reports/{month}/html",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "the report as a page"}},
)
def get_report_html(
    db: Db, who: Person, influx: InfluxDep, venue: VisibleVenue, month: MonthPath,
    language: LanguageQuery = None,
) -> Response:  # fmt: skip
    """The report as a page with its charts, in English or Dutch."""
    body = render.to_html(_report(db, influx, venue, month), _language(db, who, language))
    return Response(body, media_type="text/html; charset=utf-8")


@router.get(
    "/{venue}/reports/{month}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the report as a PDF"}},
)
def get_report_pdf(
    db: Db, who: Person, influx: InfluxDep, venue: VisibleVenue, month: MonthPath,
    language: LanguageQuery = None,
) -> Response:  # fmt: skip
    """The report as an A4 PDF, as the owner receives it by e-mail."""
    chosen = _language(db, who, language)
    run = db.get(ReportRun, (venue.id, month))
    if run is not None and run.state == service.DONE and run.pdf and run.pdf_language == chosen:
        pdf = run.pdf  # exactly what was e-mailed
    else:
        pdf = render.to_pdf(_report(db, influx, venue, month), chosen)
    filename = f"tapsense-{venue.id}-{month}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})  # fmt: skip


@router.post("/{venue}/reports/{month}/regenerate", response_model=ReportRunOut)
def regenerate_report(
    db: Db, who: Operator, influx: InfluxDep, venue: VisibleVenue, month: MonthPath
) -> ReportRunOut:
    """Operators only: make a closed month's report again from what InfluxDB and the registry
    hold now (late data, a corrected keg change) and archive it in place of the old one. The
    owner is e-mailed only if the first one never reached them."""
    year, number = _month(month)
    if month_bounds(year, number, ZoneInfo(venue.timezone))[1] > access.now_ms():
        raise access.Conflict(f"{month} has not closed yet in {venue.timezone}")
    engine: Engine = db.get_bind()  # type: ignore[assignment]
    venue_id = venue.id
    user = db.get(User, who.user_id) if who.user_id is not None else None
    by = user.email if user is not None else f"key {who.key_id}"
    db.rollback()  # the claim and the report are their own transactions
    token = service.reclaim(engine, venue_id, month, by, access.now_ms(), REGENERATE_LEASE_MS)
    if token is None:
        raise access.Conflict(f"the {month} report of {venue_id!r} is being made right now")
    if service.make(engine, influx, venue_id, month, token, email=True,
                    retry_s=300.0) is None:  # fmt: skip
        run = db.get(ReportRun, (venue_id, month))
        raise access.Unavailable(f"the report could not be made: {run.last_error if run else ''}")
    run = db.get(ReportRun, (venue_id, month))
    assert run is not None
    return _run_out(run)
