"""Reading readings back for the reports: a venue's pours and its taps' temperatures over a
span, as plain arrays.

InfluxQL only (`timeseries.influx.InfluxQL`), so the same query runs on InfluxDB 1.x and on
2.x/3.x's v1-compatible endpoint. Times are ms since the epoch, as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from timeseries import lineproto
from timeseries.influx import InfluxQL

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # the wire's id pattern: safe inside a quoted tag


@dataclass(frozen=True, slots=True)
class PourRows:
    """A venue's pours in time order: when the flow stopped, the tap, how much, how long."""

    ts_ms: npt.NDArray[np.int64]
    tap: list[str]
    ml: npt.NDArray[np.float64]
    dur_ms: npt.NDArray[np.int64]

    @classmethod
    def empty(cls) -> PourRows:
        return cls(np.zeros(0, np.int64), [], np.zeros(0), np.zeros(0, np.int64))


@dataclass(frozen=True, slots=True)
class TemperatureBuckets:
    """Per tap, the start of each bucket with readings (ms, ascending) and their mean (°C)."""

    by_tap: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]


def _venue(venue: str) -> str:
    if not _ID.match(venue):
        raise ValueError(f"venue {venue[:80]!r} is not an id")
    return venue


def pours_between(influx: InfluxQL, venue: str, start_ms: int, end_ms: int) -> PourRows:
    """Every pour of `venue` with `start_ms <= ts < end_ms`."""
    series = influx.query(
        f'SELECT "ml", "dur_ms" FROM "{lineproto.POUR}" WHERE "venue" = \'{_venue(venue)}\' '
        f'AND time >= {start_ms}ms AND time < {end_ms}ms GROUP BY "tap"',
        method="POST",
    )
    rows = sorted((int(ts), s["tags"]["tap"], float(ml), int(dur))
                  for s in series for ts, ml, dur in s["values"])  # fmt: skip
    return PourRows(
        np.array([r[0] for r in rows], dtype=np.int64),
        [r[1] for r in rows],
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.int64),
    )


def temperature_buckets(
    influx: InfluxQL, venue: str, start_ms: int, end_ms: int, bucket_ms: int
) -> TemperatureBuckets:
    """Each tap's mean temperature per `bucket_ms` (buckets aligned to the epoch), computed by
    InfluxDB: a month of raw readings is ten times slower to read (bench/report_reads.py)."""
    series = influx.query(
        f'SELECT mean("c") FROM "{lineproto.TEMPERATURE}" WHERE "venue" = '
        f"'{_venue(venue)}' AND time >= {start_ms}ms AND time < {end_ms}ms "
        f'GROUP BY time({bucket_ms}ms), "tap" fill(none)',
        method="POST",
    )
    by_tap = {}
    for s in series:
        values = [(int(ts), float(mean)) for ts, mean in s["values"] if mean is not None]
        by_tap[s["tags"]["tap"]] = (
            np.array([v[0] for v in values], dtype=np.int64),
            np.array([v[1] for v in values], dtype=np.float64),
        )
    return TemperatureBuckets(by_tap)


def first_reading_ms(influx: InfluxQL, venue: str, before_ms: int) -> int | None:
    """When `venue` sent its first temperature, if before `before_ms`."""
    series = influx.query(
        f'SELECT first("c") FROM "{lineproto.TEMPERATURE}" WHERE "venue" = '
        f"'{_venue(venue)}' AND time < {before_ms}ms",
        method="POST",
    )
    return int(series[0]["values"][0][0]) if series and series[0]["values"] else None
