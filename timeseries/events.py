"""Quality events: which check, which level, and the evidence. Plain values, no I/O, no NumPy.

The ingest worker's kernels produce them, InfluxDB stores them (`timeseries.lineproto`), and
the API, alerts and reports read them, without loading the kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Check(StrEnum):
    WARM_BEER = "warm_beer"
    WARMING_TREND = "warming_trend"
    COOLER_FAILURE = "cooler_failure"
    STUCK_SENSOR = "stuck_sensor"
    DEAD_SENSOR = "dead_sensor"
    IMPLAUSIBLE = "implausible"
    KEG_LOW = "keg_low"
    LEAK = "leak"
    FOAMY = "foamy_pours"
    AFTER_HOURS = "after_hours_flow"
    LINE_CLEANING = "line_cleaning_overdue"


# The kernels (ingest/kernels.py) number checks in the order the enum lists them
# (kernels.WARM_BEER == 0, ...); tests/test_quality_kernels.py fails if the two disagree.
CHECKS = list(Check)


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"


LEVELS = list(Level)  # kernels.OK, WARNING, CRITICAL


@dataclass(frozen=True, slots=True)
class QualityEvent:
    """A check changed level at `ts` (device time, ms), with its evidence.

    `tap` is None for venue-wide checks (cooler failure). `value` and `detail` are the figures
    behind it, per check: warm beer (°C, warm since ms), warming trend (forecast crossing ms,
    °C per hour), cooler failure (share of taps warming, how many), stuck (°C, since ms), dead
    (ms silent, last reading ms), implausible (°C, last plausible °C), keg low (forecast empty
    ms, mL left), leak (mL/s, ms), foamy pours (foamy of the last five, mL wasted so far),
    after-hours flow (mL, ms), line cleaning overdue (days since, cleaned at ms).
    """

    venue: str
    tap: str | None
    check: Check
    level: Level
    ts: int
    value: float
    detail: float
