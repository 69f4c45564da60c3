"""`tapsense report VENUE MONTH`: a venue-month's report on demand, as JSON, HTML or PDF, and
`tapsense reports`: the service that makes every venue's report once its month has closed."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from reports.model import FORMATS
from stack.settings import Settings
from texts import LANGUAGES

REPORT_EPILOG = """\
examples:
  tapsense report cafe-dom 2026-03                         JSON on standard output
  tapsense report cafe-dom 2026-03 --format pdf -o maart.pdf --language nl
  tapsense report cafe-dom 2026-03 --format html -o march.html

The figures are computed now from InfluxDB and the registry (nothing is archived or e-mailed:
the `tapsense reports` service does that once a month has closed).
"""

REPORTS_DESCRIPTION = """\
Run the reports service: for every venue, once its month has closed in its own time zone (and
reports.margin_h more for late data), compute the month's report once, archive it in the
registry's database and e-mail the PDF to the venue's owner in the owner's language ([smtp]
settings, as the alerts use). Several may run at once: a run record per venue and month makes
each report once. `tapsense up` starts one.
"""


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here: charts and PDF libraries take a while to load, and `--help` needs none.
    from registry.access import now_ms
    from registry.db import open_registry, transaction
    from registry.models import Venue
    from reports import query, render
    from timeseries.influx import InfluxError, InfluxQL

    try:
        query.month_of(args.month)
    except ValueError as exc:
        print(f"tapsense report: {exc}", file=sys.stderr)
        return 2
    engine = open_registry(settings.registry_url)
    influx = InfluxQL(settings.influx)
    try:
        with transaction(engine) as db:
            venue = db.get(Venue, args.venue)
            if venue is None:
                print(f"tapsense report: no venue {args.venue!r}", file=sys.stderr)
                return 2
            report = query.report(db, influx, venue, args.month, now_ms())
    except InfluxError as exc:
        print(f"tapsense report: InfluxDB: {exc}", file=sys.stderr)
        return 1
    finally:
        influx.close()
        engine.dispose()
    body = render.as_format(report, args.format, args.language)
    if args.output is None or str(args.output) == "-":
        sys.stdout.buffer.write(body)
    else:
        args.output.write_bytes(body)
        print(f"{args.output}: {args.format}, {len(body):,} bytes", file=sys.stderr)
    return 0


def cmd_reports(settings: Settings, args: argparse.Namespace,
                stop_on_signals: Callable[[], threading.Event]) -> int:  # fmt: skip
    from reports.service import ReportsService

    stop = stop_on_signals()
    ReportsService(settings.for_reports()).run(stop, once=args.once)
    return 0


def add_parsers(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                stop_on_signals: Callable[[], threading.Event]) -> None:  # fmt: skip
    report = sub.add_parser(
        "report",
        help="a venue's monthly report now, as JSON, HTML or PDF",
        description="Compute a venue-month's report (volumes, trends, heat map, temperature "
        "compliance, incidents, waste, kegs and stock-outs, the region's median, tips) and "
        "write it as JSON, HTML or PDF.",
        epilog=REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("venue", help="the venue's id")
    report.add_argument("month", help="YYYY-MM, in the venue's own time zone")
    report.add_argument("--format", choices=FORMATS, default="json")
    report.add_argument(
        "--language", choices=LANGUAGES, default="en", help="for HTML and PDF (default: en)"
    )
    report.add_argument(
        "-o", "--output", type=Path, help="write to this file (default: standard output)"
    )
    report.set_defaults(run=cmd_report)

    service = sub.add_parser(
        "reports",
        help="run the reports service (monthly reports, archived and e-mailed)",
        description=REPORTS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    service.add_argument("--once", action="store_true", help="make the reports due now, then stop")
    service.set_defaults(run=lambda settings, args: cmd_reports(settings, args, stop_on_signals))
