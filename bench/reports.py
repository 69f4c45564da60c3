"""What a monthly report costs: one venue-month, and a region of 100 venue-months as the
reports service makes them, from a backfilled InfluxDB; figures (reading and computing) and
rendering (HTML with its charts, PDF) timed apart. Baseline in the same run: the month's
temperatures read raw, what the figures would have to read without InfluxDB's averaging.

    .venv/bin/python -m bench.reports [--venues 100] [--taps 4] [--sample 120] [--pdfs 10]

Starts its own InfluxDB on a free loopback port and a SQLite registry, both in a temporary
folder, and backfills March 2026 for every venue (a reading per tap every `--sample` seconds,
evening pours). Goal: figures under one second per venue-month.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from tqdm import tqdm

from edge.wire import Pour, Temperature
from registry import changes
from registry.db import migrate, open_registry, transaction
from registry.inputs import BeerIn, TapIn, VenueIn
from registry.models import Venue
from reports import figures, query, render
from reports.metrics import month_bounds
from stack.services import free_port, start_influxdb
from timeseries import lineproto
from timeseries.influx import InfluxQL, V1Writer, ensure_database
from timeseries.settings import InfluxSettings

ZONE = ZoneInfo("Europe/Amsterdam")
MONTH = "2026-03"
BATCH = 20_000


def backfill(settings: InfluxSettings, venues: list[str], taps: int, sample_s: int) -> int:
    start, end = month_bounds(2026, 3, ZONE)
    rng = random.Random(1)
    writer = V1Writer(settings)
    written = 0
    for venue in tqdm(venues, desc="backfilling March", unit="venue"):
        lines: list[str] = []
        for ts in range(start, end, sample_s * 1000):
            hour = (ts - start) // 3_600_000 % 24  # local enough for made-up evenings
            for t in range(taps):
                tap = f"tap-{t + 1:02d}"
                lines += lineproto.temperatures(venue, 0, [Temperature(tap=tap, ts=ts,
                                                c=round(4 + rng.random() * 2.5, 2))])  # fmt: skip
                if hour >= 16 and rng.random() < sample_s / 600:  # a pour every ten minutes
                    pour = Pour(tap=tap, ts=ts + 1, ml=round(rng.uniform(250, 500), 1),
                                dur_ms=rng.randrange(4000, 9000))  # fmt: skip
                    lines += lineproto.pours(venue, 0, [pour])
            if len(lines) >= BATCH:
                writer.write(lineproto.body(lines))
                written += len(lines)
                lines = []
        writer.write(lineproto.body(lines))
        written += len(lines)
    writer.close()
    return written


def register(url: str, venues: list[str], taps: int) -> None:
    migrate(url)
    engine = open_registry(url)
    with transaction(engine) as db:
        org = changes.create_organisation(db, "Bench brewery")
        beers = [changes.create_beer(db, org.id, BeerIn(name=name, price_per_l=8.0))
                 for name in ("pils", "ipa")]  # fmt: skip
        for venue_id in venues:
            venue = changes.create_venue(db, org.id, VenueIn(
                id=venue_id, name=venue_id, latitude=52.09, longitude=5.12, region="Bench",
                hours={"mon": "16:00-24:00", "tue": "16:00-24:00", "wed": "16:00-24:00",
                       "thu": "16:00-24:00", "fri": "15:00-24:00", "sat": "13:00-24:00",
                       "sun": "13:00-22:00"}))  # type: ignore[arg-type]  # fmt: skip
            for t in range(taps):
                changes.create_tap(db, venue, TapIn(id=f"tap-{t + 1:02d}", keg_l=50,
                                                    beer_id=beers[t % 2].id))  # fmt: skip
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venues", type=int, default=100, help="venues in the region")
    parser.add_argument("--taps", type=int, default=4)
    parser.add_argument("--sample", type=int, default=120, help="seconds between readings")
    parser.add_argument("--pdfs", type=int, default=10, help="reports rendered to PDF")
    args = parser.parse_args()
    venues = [f"bench-{i:03d}" for i in range(args.venues)]
    with tempfile.TemporaryDirectory(prefix="tapsense-bench-") as tmp:
        port, rpc = free_port(), free_port()
        influxd = start_influxdb(Path(tmp) / "influxdb", "127.0.0.1", port, rpc)
        url = f"sqlite:///{Path(tmp) / 'registry.sqlite'}"
        try:
            settings = InfluxSettings(url=f"http://127.0.0.1:{port}", database="bench",
                                      timeout_s=300)  # fmt: skip
            ensure_database(settings)
            register(url, venues, args.taps)
            points = backfill(settings, venues, args.taps, args.sample)
            print(f"\n{args.venues} venues x {args.taps} taps, March 2026: {points:,} points "
                  f"(a reading every {args.sample} s per tap, evening pours)\n")  # fmt: skip
            measure(url, settings, venues, args.pdfs)
        finally:
            influxd.stop()


def measure(url: str, settings: InfluxSettings, venues: list[str], pdfs: int) -> None:
    engine = open_registry(url)
    influx = InfluxQL(settings)
    now = int(time.time() * 1000)
    start, end = month_bounds(2026, 3, ZONE)
    try:
        with transaction(engine) as db:
            first = db.get(Venue, venues[0])
            assert first is not None
            # The baseline: the month's temperatures of one venue, every reading.
            began = time.perf_counter()
            series = influx.query(
                f"SELECT \"c\" FROM \"temperature\" WHERE \"venue\" = '{first.id}' AND "
                f'time >= {start}ms AND time < {end}ms GROUP BY "tap"', method="POST")  # fmt: skip
            raw_s = time.perf_counter() - began
            raw = sum(len(s["values"]) for s in series)

            began = time.perf_counter()
            data = query.gather(db, influx, first, 2026, 3, now)
            read_s = time.perf_counter() - began
            began = time.perf_counter()
            alone = figures.build(data)
            compute_s = time.perf_counter() - began
            began = time.perf_counter()
            render.to_html(alone, "nl")
            html_s = time.perf_counter() - began
            began = time.perf_counter()
            render.to_pdf(alone, "nl")
            pdf_s = time.perf_counter() - began
            print(f"one venue-month ({alone.pours:,} pours; region comparison left out):")
            print(f"  figures   {read_s + compute_s:.3f} s (reading {read_s:.3f} s, computing "
                  f"{compute_s:.3f} s)")  # fmt: skip
            print(f"  rendering HTML {html_s:.3f} s, PDF {pdf_s:.3f} s (HTML included)")
            print(f"  baseline: its {raw:,} temperatures read raw {raw_s:.3f} s; the figures "
                  f"take {(read_s + compute_s) / raw_s:.2f}x of that\n")  # fmt: skip

            cache = query.MonthCache()
            reports = []
            began = time.perf_counter()
            for venue_id in tqdm(venues, desc="region's figures", unit="venue-month"):
                venue = db.get(Venue, venue_id)
                assert venue is not None
                reports.append(query.report(db, influx, venue, MONTH, now, cache))
            region_s = time.perf_counter() - began
            timings = []
            for report in reports[:pdfs]:
                began = time.perf_counter()
                render.to_pdf(report, "nl")
                timings.append(time.perf_counter() - began)
            print(f"a region of {len(venues)} venue-months, each compared with the "
                  f"{len(venues) - 1} others (as the reports service makes them):")  # fmt: skip
            print(f"  figures   {region_s:.2f} s: {region_s / len(venues):.3f} s per venue-month")
            pdf_s = statistics.median(timings)
            print(f"  rendering PDF {pdf_s:.3f} s per report (median of {len(timings)}); "
                  f"{len(venues)} reports ~{pdf_s * len(venues):.0f} s")  # fmt: skip

            began = time.perf_counter()
            venue = db.get(Venue, venues[-1])
            assert venue is not None
            query.report(db, influx, venue, MONTH, now)
            cold_s = time.perf_counter() - began
            ratio = cold_s / (region_s / len(venues))
            print(f"  one venue-month on demand before the month is archived (reads its "
                  f"{len(venues) - 1} neighbours itself): {cold_s:.2f} s, "
                  f"{ratio:.0f}x the batch's per venue-month")  # fmt: skip
    finally:
        influx.close()
        engine.dispose()


if __name__ == "__main__":
    main()
