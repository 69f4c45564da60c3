"""Reading readings back for the reports: a venue's pours over a span, as plain arrays.

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
    """A venue's pours in time order: when the flow stopped, the tap, and how much."""

    ts_ms: npt.NDArray[np.int64]
    tap: list[str]
    ml: npt.NDArray[np.float64]


def pours_between(influx: InfluxQL, venue: str, start_ms: int, end_ms: int) -> PourRows:
    """Every pour of `venue` with `start_ms <= ts < end_ms`."""
    if not _ID.match(venue):
        raise ValueError(f"venue {venue[:80]!r} is not an id")
    series = influx.query(
        f'SELECT "ml" FROM "{lineproto.POUR}" WHERE "venue" = \'{venue}\' '
        f'AND time >= {start_ms}ms AND time < {end_ms}ms GROUP BY "tap"',
        method="POST",
    )
    rows = sorted((int(ts), s["tags"]["tap"], float(ml)) for s in series for ts, ml in s["values"])
    return PourRows(
        np.array([r[0] for r in rows], dtype=np.int64),
        [r[1] for r in rows],
        np.array([r[2] for r in rows], dtype=np.float64),
    )
