"""The reports service on real servers: InfluxDB, the registry on SQLite and on PostgreSQL,
and a real SMTP server. Two services at once make each venue-month's report once and e-mail it
once, in the owner's language with the PDF attached; a month without data and a venue without
taps are clear reports; a mail server that says "later" gets the e-mail later, once; a claim
left by a killed service is taken over; the region's median comes from the archive."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, select

from alerts.settings import SmtpSettings
from edge.wire import Pour, Temperature
from registry import changes
from registry.db import engine_for, migrate, transaction
from registry.inputs import TapIn, UserIn, VenueIn
from registry.models import Venue
from registry.report_models import ReportRun
from reports import query, render, service
from reports.model import Report
from reports.service import ReportsService
from reports.settings import ReportsSettings, ReportsSetup
from tests import reportdata
from tests.alerting import alert_venue
from tests.conftest import Influx
from tests.receivers import SmtpSink
from timeseries import lineproto
from timeseries.influx import InfluxQL, V1Writer, ensure_database
from timeseries.settings import InfluxSettings

MARCH_START = 1_772_319_600_000  # 2026-03-01T00:00 in Amsterdam
APRIL_2 = 1_775_124_000_000  # 2026-04-02T12:00 in Amsterdam: March closed, margin passed
HOUR = 3_600_000


@dataclass
class World:
    engine: Engine
    setup: ReportsSetup
    sink: SmtpSink
    litres: float


def write_march(settings: InfluxSettings, venue: str) -> float:
    """Evening pours and readings on tap-1 and tap-2 through March; the litres poured."""
    lines: list[str] = []
    litres = 0.0
    for day in range(31):
        for hour in range(18, 23):
            ts = MARCH_START + day * 24 * HOUR + hour * HOUR
            for tap in ("tap-1", "tap-2"):
                lines += lineproto.temperatures(venue, 0, [Temperature(tap=tap, ts=ts, c=4.5)])
                lines += lineproto.pours(venue, 0, [Pour(tap=tap, ts=ts + 60_000, ml=400.0,
                                                         dur_ms=8000)])  # fmt: skip
                litres += 0.4
    writer = V1Writer(settings)
    writer.write(lineproto.body(lines))
    writer.close()
    return litres


@pytest.fixture
def world(registry_url: str, influx: Influx) -> Iterator[World]:
    migrate(registry_url)
    engine = engine_for(registry_url)
    alert_venue(engine, "cafe-a", language="nl", taps=2)
    with transaction(engine) as db:
        org = db.get(Venue, "cafe-a").organisation_id  # type: ignore[union-attr]
        owner = changes.create_user(db, org, UserIn(email="owner@empty.example", name="E",
                                                    role="owner"))  # fmt: skip
        changes.create_venue(db, org, VenueIn(id="cafe-empty", name="Café Leeg", latitude=52.1,
                                              longitude=5.1, region="Utrecht",
                                              owner_id=owner.id))  # fmt: skip
    influx_settings = InfluxSettings(url=influx.url, database=f"rep_{uuid.uuid4().hex[:8]}")
    ensure_database(influx_settings)
    litres = write_march(influx_settings, "cafe-a")
    with SmtpSink() as sink:
        setup = ReportsSetup(
            reports=ReportsSettings(retry_s=1.0),
            smtp=SmtpSettings(host="127.0.0.1", port=sink.port, starttls=False),
            influx=influx_settings,
            registry_url=registry_url,
        )
        yield World(engine, setup, sink, litres)
    engine.dispose()


def runs(engine: Engine) -> dict[tuple[str, str], ReportRun]:
    with transaction(engine) as db:
        rows = list(db.scalars(select(ReportRun)))
        db.expunge_all()
    return {(r.venue_id, r.month): r for r in rows}


def pdf_text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_two_services_make_each_report_once_and_email_it_once(world: World) -> None:
    services = [ReportsService(world.setup), ReportsService(world.setup)]
    barrier = threading.Barrier(2)
    results: list[tuple[int, int]] = []

    def run(s: ReportsService) -> None:
        barrier.wait()
        for _ in range(3):
            results.append(s.run_once(APRIL_2))

    threads = [threading.Thread(target=run, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for s in services:
        s.close()

    assert sum(made for made, _ in results) == 2  # cafe-a and cafe-empty, once each
    assert sum(sent for _, sent in results) == 2
    made = runs(world.engine)
    assert set(made) == {("cafe-a", "2026-03"), ("cafe-empty", "2026-03")}
    assert {(r.state, r.attempts) for r in made.values()} == {("done", 1)}
    assert all(r.emailed_ms is not None for r in made.values())

    mails = {str(m["To"]): m for m in world.sink.messages}
    assert len(world.sink.messages) == 2 and set(mails) == {"owner@cafe-a.example",
                                                            "owner@empty.example"}  # fmt: skip
    dutch = mails["owner@cafe-a.example"]
    assert dutch["Subject"] == "Tapsense-rapport maart 2026: Café cafe-a"
    assert dutch["Message-ID"] == "<report-cafe-a-2026-03@tapsense>"
    body = dutch.get_body(("plain",))
    assert body is not None and "In de bijlage vindt u het Tapsense-rapport" in body.get_content()
    [attachment] = list(dutch.iter_attachments())
    assert attachment.get_filename() == "tapsense-cafe-a-2026-03.pdf"
    pdf = attachment.get_content()
    assert pdf == made[("cafe-a", "2026-03")].pdf  # what was archived is what was sent
    text = pdf_text(pdf)
    assert "maart 2026" in text.lower() and f"{world.litres:.1f} l".replace(".", ",") in text
    report = Report.model_validate(made[("cafe-a", "2026-03")].model)
    assert report.litres == pytest.approx(world.litres)
    assert report.pours == 31 * 5 * 2

    english = mails["owner@empty.example"]
    empty_pdf = next(iter(english.iter_attachments())).get_content()
    assert "This venue has no taps registered" in pdf_text(empty_pdf)

    again = ReportsService(world.setup)
    assert again.run_once(APRIL_2) == (0, 0)
    again.close()
    assert len(world.sink.messages) == 2


def test_a_month_without_data_is_a_clear_report_not_an_error(world: World) -> None:
    influx = InfluxQL(world.setup.influx)
    try:
        with transaction(world.engine) as db:
            venue = db.get(Venue, "cafe-a")
            assert venue is not None
            report = query.report(db, influx, venue, "2026-01", APRIL_2)
            empty = query.report(db, influx, db.get(Venue, "cafe-empty"), "2026-03", APRIL_2)  # type: ignore[arg-type]
    finally:
        influx.close()
    assert (report.has_data, report.litres, report.pours, report.tips) == (False, 0.0, 0, [])
    assert (empty.taps, empty.compliance, empty.stock_outs) == (0, [], [])
    for r, says in ((report, "No readings and no pours arrived for January 2026"),
                    (empty, "This venue has no taps registered")):  # fmt: skip
        assert says in render.to_html(r, "en")
        assert says in pdf_text(render.to_pdf(r, "en"))
    assert "Over januari 2026 kwamen geen metingen" in render.to_html(report, "nl")


def test_a_mail_server_saying_later_gets_the_email_later_once(world: World) -> None:
    world.sink.busy = 1
    s = ReportsService(world.setup)
    try:
        assert s.run_once(APRIL_2) == (2, 1)  # one address got "451 try again later"
        waiting = [r for r in runs(world.engine).values() if r.emailed_ms is None]
        assert [(r.email_attempts, "451" in (r.last_error or "")) for r in waiting] == [(1, True)]
        assert waiting[0].next_email_ms > service.clock_ms()  # type: ignore[operator]
        assert s.run_once(APRIL_2) == (0, 0)  # not before its backoff
        later = int(waiting[0].next_email_ms or 0) + 1
        assert service.send_emails(world.engine, world.setup, later) == 1
        assert service.send_emails(world.engine, world.setup, later + 10 * HOUR) == 0
    finally:
        s.close()
    assert len(world.sink.unique()) == len(world.sink.messages) == 2


def test_a_refused_address_is_given_up_not_retried(world: World) -> None:
    world.sink.refused.add("owner@empty.example")
    s = ReportsService(world.setup)
    try:
        s.run_once(APRIL_2)
        assert service.send_emails(world.engine, world.setup, APRIL_2 + 1000 * HOUR) == 0
    finally:
        s.close()
    refused = runs(world.engine)[("cafe-empty", "2026-03")]
    assert refused.emailed_ms is None and refused.next_email_ms is None
    assert "e-mail given up" in (refused.last_error or "")
    assert [str(m["To"]) for m in world.sink.messages] == ["owner@cafe-a.example"]


def test_a_claim_left_by_a_killed_service_is_taken_over_after_its_lease(world: World) -> None:
    now = service.clock_ms()
    with transaction(world.engine) as db:
        db.add(ReportRun(venue_id="cafe-a", month="2026-03", state="running",
                         requested_by="schedule", claimed_ms=now - 1000 * HOUR,
                         lease_until_ms=now - 1, attempts=1))  # fmt: skip
        db.add(ReportRun(venue_id="cafe-empty", month="2026-03", state="running",
                         requested_by="schedule", claimed_ms=now,
                         lease_until_ms=now + HOUR, attempts=1))  # fmt: skip
    s = ReportsService(world.setup)
    try:
        assert s.run_once(APRIL_2)[0] == 1  # the expired one; the live claim is left alone
    finally:
        s.close()
    made = runs(world.engine)
    assert (made[("cafe-a", "2026-03")].state, made[("cafe-a", "2026-03")].attempts) == ("done", 2)
    assert made[("cafe-empty", "2026-03")].state == "running"


def test_the_regions_median_comes_from_the_other_venues_archived_reports(world: World) -> None:
    base = reportdata.report()
    per_tap = [100.0, 120.0, 80.0, 150.0, 90.0]  # five others: enough to compare
    with transaction(world.engine) as db:
        org = db.get(Venue, "cafe-a").organisation_id  # type: ignore[union-attr]
        for i, litres_per_tap in enumerate(per_tap):
            venue = changes.create_venue(db, org, VenueIn(
                id=f"peer-{i}", name=f"Peer {i}", latitude=52.0, longitude=5.0,
                region="Utrecht"))  # fmt: skip
            changes.create_tap(db, venue, TapIn(id="tap-1", keg_l=50))
            model = base.model_copy(update={"venue": venue.id, "litres": litres_per_tap * 3})
            db.add(ReportRun(venue_id=venue.id, month="2026-03", state="done",
                             requested_by="schedule", claimed_ms=0, lease_until_ms=0,
                             attempts=1, model=model.model_dump(mode="json")))  # fmt: skip
    influx = InfluxQL(world.setup.influx)
    try:
        with transaction(world.engine) as db:
            report = query.report(db, influx, db.get(Venue, "cafe-a"), "2026-03", APRIL_2)  # type: ignore[arg-type]
    finally:
        influx.close()
    region = report.region_comparison
    # cafe-empty has no taps: not a venue to compare with
    assert (region.included, region.other_venues) == (True, 5)
    assert region.median_litres_per_tap == pytest.approx(100.0)
    assert region.litres_per_tap == pytest.approx(world.litres / 2)
    assert "the median of 5 other venues" in render.to_html(report, "en")


def test_the_command_refuses_a_bad_month_or_an_unknown_venue_with_the_reason(
    world: World, tmp_path: Path
) -> None:
    env = {**os.environ, "TAPSENSE_HOME": str(tmp_path),
           "TAPSENSE_REGISTRY__URL": world.setup.registry_url,
           "TAPSENSE_INFLUX__URL": world.setup.influx.url,
           "TAPSENSE_INFLUX__DATABASE": world.setup.influx.database}  # fmt: skip

    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stack.cli", "report", *args], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    for month, reason in (("2026-13", "is not YYYY-MM"), ("March", "is not YYYY-MM"),
                          ("9999-12", "after 9998")):  # fmt: skip
        refused = report("cafe-a", month)
        assert refused.returncode == 2 and reason in refused.stderr, refused.stderr
    unknown = report("no-such-cafe", "2026-03")
    assert unknown.returncode == 2 and "no venue 'no-such-cafe'" in unknown.stderr
    out = tmp_path / "maart.pdf"
    made = report("cafe-a", "2026-03", "--format", "pdf", "--language", "nl", "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert "maart 2026" in pdf_text(out.read_bytes()).lower()
