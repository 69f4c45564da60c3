"""Reading back what InfluxDB holds, to compare with what was sent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from simulators.fleet import GroundTruth
from simulators.run import stored_readings
from stack.settings import Settings
from timeseries.influx import InfluxQL, InfluxUnavailable

Temp = tuple[str, str, int, float]
PourRow = tuple[str, str, int, float, int]


def _per_venue(settings: Settings, measurement: str, fields: str) -> list[dict[str, Any]]:
    """Every series of a measurement, read one venue at a time to keep responses small."""
    client = InfluxQL(settings.influx.model_copy(update={"timeout_s": 120.0}))
    try:
        tags = client.query(f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "venue"')
        venues = [value for _, value in tags[0]["values"]] if tags else []
        return [
            series
            for venue in venues
            for series in client.query(
                f'SELECT {fields} FROM "{measurement}" '
                f'WHERE "venue" = \'{venue}\' GROUP BY "venue", "tap"'
            )
        ]
    finally:
        client.close()


def stored_temperatures(settings: Settings) -> list[Temp]:
    return [
        (s["tags"]["venue"], s["tags"]["tap"], int(ts), float(c))
        for s in _per_venue(settings, "temperature", '"c"')
        for ts, c in s["values"]
    ]


def stored_pours(settings: Settings) -> list[PourRow]:
    return [
        (s["tags"]["venue"], s["tags"]["tap"], int(ts), float(ml), int(dur))
        for s in _per_venue(settings, "pour", '"ml", "dur_ms"')
        for ts, ml, dur in s["values"]
    ]


def sent_temperatures(truth: GroundTruth) -> list[Temp]:
    return [(venue, r.tap, r.ts, r.c) for venue, r in truth.temps]


def sent_pours(truth: GroundTruth) -> list[PourRow]:
    return [(venue, r.tap, r.ts, r.ml, r.dur_ms) for venue, r in truth.pours]


def wait_for(
    condition: Callable[[], bool], timeout_s: float = 120.0, every_s: float = 0.25
) -> bool:
    """Poll until `condition` holds; a liveness bound for eventual delivery, not a speed test."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except InfluxUnavailable:
            pass
        time.sleep(every_s)
    return condition()


def stored_count(settings: Settings) -> int:
    """Temperatures and pours stored, counted by InfluxDB (cheap enough to poll)."""
    client = InfluxQL(settings.influx)
    try:
        return stored_readings(client)
    finally:
        client.close()


def stored_of(settings: Settings, venue: str, measurement: str = "temperature",
              field: str = "c") -> int:  # fmt: skip
    """One venue's points of one measurement, counted by InfluxDB."""
    client = InfluxQL(settings.influx)
    try:
        series = client.query(
            f'SELECT count("{field}") FROM "{measurement}" WHERE "venue" = \'{venue}\''
        )
    finally:
        client.close()
    return int(series[0]["values"][0][1]) if series else 0


def assert_stored_once(settings: Settings, truth: GroundTruth, timeout_s: float = 180.0) -> None:
    """Every reading sent is in InfluxDB, equal to what was sent, and none more."""
    assert wait_for(lambda: stored_count(settings) >= truth.total, timeout_s=timeout_s)
    assert sorted(stored_temperatures(settings)) == sorted(sent_temperatures(truth))
    assert sorted(stored_pours(settings)) == sorted(sent_pours(truth))
