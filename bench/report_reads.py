"""What a monthly report costs to read from InfluxDB: a venue-month of temperatures read raw,
against the same month aggregated per tap and hour by InfluxDB itself (what a stored hourly
rollup would hold), and the month's pours. Decides whether reports need rollups of their own.

    .venv/bin/python -m bench.report_reads [--taps 8] [--sample 30]

Starts its own InfluxDB on a free loopback port, data in a temporary folder, and backfills one
venue's March 2026 (a reading per tap every `--sample` seconds, pours every few minutes).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.wire import Pour, Temperature
from reports.metrics import month_bounds
from stack.services import free_port, start_influxdb
from timeseries import lineproto
from timeseries.influx import InfluxQL, V1Writer, ensure_database
from timeseries.reads import pours_between
from timeseries.settings import InfluxSettings

VENUE = "bench-venue"
BATCH = 5000


def backfill(settings: InfluxSettings, taps: int, sample_s: int, start: int, end: int) -> int:
    rng = random.Random(1)
    writer = V1Writer(settings)
    lines: list[str] = []
    written = 0
    for ts in range(start, end, sample_s * 1000):
        temps = [Temperature(tap=f"tap-{t:02d}", ts=ts, c=round(4 + rng.random() * 3, 2))
                 for t in range(taps)]  # fmt: skip
        lines += lineproto.temperatures(VENUE, 0, temps)
        if rng.random() < sample_s / 300:  # a pour every five minutes or so
            tap = f"tap-{rng.randrange(taps):02d}"
            lines += lineproto.pours(VENUE, 0, [Pour(tap=tap, ts=ts + 1, ml=500.0, dur_ms=4000)])
        if len(lines) >= BATCH:
            writer.write(lineproto.body(lines))
            written += len(lines)
            lines = []
    if lines:
        writer.write(lineproto.body(lines))
        written += len(lines)
    writer.close()
    return written


def timed(what: str, call: object) -> float:
    started = time.perf_counter()
    result = call()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(f"  {what}: {elapsed:.3f} s ({result})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--taps", type=int, default=8)
    parser.add_argument("--sample", type=int, default=30, help="seconds between readings")
    args = parser.parse_args()
    start, end = month_bounds(2026, 3, ZoneInfo("Europe/Amsterdam"))
    with tempfile.TemporaryDirectory(prefix="tapsense-bench-") as tmp:
        port, rpc = free_port(), free_port()
        influxd = start_influxdb(Path(tmp) / "influxdb", "127.0.0.1", port, rpc)
        try:
            settings = InfluxSettings(url=f"http://127.0.0.1:{port}", database="bench",
                                      timeout_s=300)  # fmt: skip
            ensure_database(settings)
            points = backfill(settings, args.taps, args.sample, start, end)
            print(f"\none venue-month: {points:,} points ({args.taps} taps, a reading every "
                  f"{args.sample} s, and pours)")  # fmt: skip
            client = InfluxQL(settings)
            where = f"\"venue\" = '{VENUE}' AND time >= {start}ms AND time < {end}ms"

            def raw() -> str:
                series = client.query(f'SELECT "c" FROM "temperature" WHERE {where} '
                                      'GROUP BY "tap"', method="POST")  # fmt: skip
                return f"{sum(len(s['values']) for s in series):,} readings"

            def hourly() -> str:
                series = client.query(
                    f'SELECT count("c"), mean("c"), min("c"), max("c") FROM "temperature" '
                    f'WHERE {where} GROUP BY time(1h), "tap"', method="POST")  # fmt: skip
                return f"{sum(len(s['values']) for s in series):,} tap-hours"

            def in_range() -> str:
                series = client.query(
                    f'SELECT count("c") FROM "temperature" WHERE {where} AND "c" >= 2 '
                    f'AND "c" <= 6 GROUP BY time(1h), "tap"', method="POST")  # fmt: skip
                return f"{sum(len(s['values']) for s in series):,} tap-hours"

            def pours() -> str:
                return f"{len(pours_between(client, VENUE, start, end).ml):,} pours"

            raw_s = timed("raw temperatures, every reading", raw)
            hourly_s = timed("per tap and hour (count, mean, min, max), by InfluxDB", hourly)
            range_s = timed("per tap and hour, readings in a serving range", in_range)
            pours_s = timed("the month's pours", pours)
            client.close()
        finally:
            influxd.stop()
    print(f"ratio raw / aggregated by InfluxDB: {raw_s / hourly_s:.1f}; everything a report "
          f"reads without raw temperatures: {hourly_s + range_s + pours_s:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
