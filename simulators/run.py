"""The simulators' modes, as the `tapsense simulate` and `tapsense load` commands run them."""

from __future__ import annotations

import logging
import multiprocessing
import re
import secrets
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from registry.db import open_registry
from simulators import scenario as sc
from simulators import scorecard
from simulators.fleet import AgentTuning, Fleet, simple_scenario
from simulators.provision import Credentials, provision
from simulators.staff import Staff
from simulators.target import Target
from simulators.world import ms
from timeseries import lineproto
from timeseries.events import Check, Level, QualityEvent
from timeseries.influx import InfluxError, InfluxQL

_LOGGER = logging.getLogger(__name__)

Mode = Literal["fast-forward", "real-time"]


# Real time publishes as it measures; a backlog after an outage drains at this rate per venue.
REAL_TIME_TUNING = AgentTuning(catchup_messages_per_s=50)


def simulate(
    target: Target, scenario: sc.Scenario, mode: Mode, truth: Path | None, stop: threading.Event,
    *, score: bool = False,
) -> int:  # fmt: skip
    """Run a scenario against the configured broker; 0 when every reading was acknowledged.
    With `score`, wait for the stack to store every reading, then print the scorecard of the
    quality events it raised against what happened (`simulators.scorecard`)."""
    if mode == "real-time":
        scenario = sc.shifted(scenario, datetime.now(UTC))
    tuning = REAL_TIME_TUNING if mode == "real-time" else AgentTuning()
    # Fast-forward waits for ingest to look at the registry once more after each keg change:
    # it reads the registry every `refresh_s`, so two of those and a margin always see it.
    staff_pause_s = 0.0 if mode == "real-time" else 2 * target.registry_refresh_s + 0.2
    engine = open_registry(target.registry_url)
    try:
        credentials = provision(engine, scenario, target.broker_auth_dir)
        fleet = Fleet(
            scenario, target.mqtt, target.spool_dir / scenario.name, tuning,
            credentials=credentials, staff=Staff(engine, pause_s=staff_pause_s),
        )  # fmt: skip
    except ValueError as exc:
        engine.dispose()
        _LOGGER.error("%s; for a larger load use `tapsense load`", exc)
        return 2
    _LOGGER.info(
        "scenario %r: %d venues, %s from %s, %s",
        scenario.name,
        len(fleet.venues),
        scenario.duration,
        scenario.start.isoformat(),
        mode,
    )
    fleet.connect()
    try:
        if mode == "real-time":
            fleet.real_time(stop)
        else:
            fleet.fast_forward(progress=True)
        if not fleet.drain(timeout_s=300):
            _LOGGER.error("the broker did not acknowledge everything; it stays spooled")
            return 1
    finally:
        fleet.close()
        engine.dispose()
        if truth is not None:
            fleet.truth.write(truth)
            _LOGGER.info("ground truth written to %s", truth)
    _LOGGER.info(
        "sent %d readings (%d temperatures, %d pours); %d things happened",
        fleet.truth.total,
        len(fleet.truth.temps),
        len(fleet.truth.pours),
        len(fleet.truth.events),
    )
    if score:
        return print_scorecard(target, scenario, fleet)
    return 0


def print_scorecard(target: Target, scenario: sc.Scenario, fleet: Fleet) -> int:
    """Once InfluxDB holds every reading sent, the scorecard of the quality events; 1 if the
    stack did not store them all within `SCORE_WAIT_S`."""
    venues = [venue.id for venue, _ in fleet.venues]
    start = ms(scenario.start)
    end = start + sc.seconds(scenario.duration) * 1000
    influx = InfluxQL(target.influx)
    try:
        deadline = time.monotonic() + SCORE_WAIT_S
        stored = 0
        while (stored := stored_readings(influx, venue_regex(venues))) < fleet.truth.total:
            if time.monotonic() > deadline:
                _LOGGER.error("the stack stored %d of %d readings in %d s; no scorecard",
                              stored, fleet.truth.total, SCORE_WAIT_S)  # fmt: skip
                return 1
            time.sleep(1)
        time.sleep(SCORE_SETTLE_S)  # events of the last batch, and of late keg changes
        events = quality_events(influx, venues, start, end + AFTER_END_MS)
    finally:
        influx.close()
    card = scorecard.score(
        fleet.truth.events, events, venues=len(venues), start_ms=start, end_ms=end,
        keg_l=scorecard.keg_sizes(scenario),
    )  # fmt: skip
    print(f"scorecard of {scenario.name!r}: {stored:,} readings, {len(events):,} quality "
          f"events\n{card}")  # fmt: skip
    return 0


SCORE_WAIT_S = 600
SCORE_SETTLE_S = 3
AFTER_END_MS = 86_400_000  # events a day past the scenario's end still belong to it


def venue_regex(venues: list[str]) -> str:
    """A regular expression matching exactly these venue ids."""
    return "|".join(re.escape(v) for v in venues)


def quality_events(
    influx: InfluxQL, venues: list[str], start_ms: int, end_ms: int
) -> list[QualityEvent]:
    """The quality events InfluxDB holds for these venues between the two times."""
    series = influx.query(
        f'SELECT "level", "value", "detail" FROM "{lineproto.QUALITY}" '
        f'WHERE "venue" =~ /^({venue_regex(venues)})$/ AND time >= {start_ms}ms '
        f'AND time < {end_ms}ms GROUP BY "venue", "tap", "check"'
    )
    return [
        QualityEvent(
            s["tags"]["venue"],
            s["tags"].get("tap") or None,
            Check(s["tags"]["check"]),
            Level(level),
            int(ts),
            float(value),
            float(detail),
        )
        for s in series
        for ts, level, value, detail in s["values"]
    ]


def register(target: Target, scenario: sc.Scenario) -> Credentials:
    """The scenario's venues and devices in the registry; each device's broker login."""
    engine = open_registry(target.registry_url)
    try:
        return provision(engine, scenario, target.broker_auth_dir)
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class LoadReport:
    venues: int
    taps: int
    target_per_s: float
    seconds: float
    sent: int
    stored: int

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.stored)

    @property
    def extra(self) -> int:
        """Points stored that were never sent once: duplicates that did not overwrite."""
        return max(0, self.stored - self.sent)

    def __str__(self) -> str:
        return (
            f"load: {self.venues} venues x {self.taps} taps, target {self.target_per_s:,.0f} "
            f"readings/s for {self.seconds:.0f} s\n"
            f"  sent     {self.sent:,} ({self.sent / self.seconds:,.0f} readings/s achieved)\n"
            f"  stored   {self.stored:,}\n"
            f"  lost     {self.lost:,}\n"
            f"  extra    {self.extra:,} (duplicates stored twice)"
        )


def stored_readings(influx: InfluxQL, venues: str | None = None) -> int:
    """Temperatures and pours InfluxDB holds (of the venues whose whole id matches the regular
    expression `venues`), counted by it."""
    where = f' WHERE "venue" =~ /^({venues})$/' if venues else ""
    total = 0
    for measurement, field in ((lineproto.TEMPERATURE, "c"), (lineproto.POUR, "ml")):
        series = influx.query(f'SELECT count("{field}") FROM "{measurement}"{where}')
        total += int(series[0]["values"][0][1]) if series else 0
    return total


# Venues per load process: well under what one process can hold (MAX_AGENTS_PER_PROCESS).
VENUES_PER_LOAD_PROCESS = 100


def _load_part(
    target: Target, scenario: sc.Scenario, part: range, folder: str, credentials: Credentials
) -> int:
    """One process's share of a load run: its venues in real time; returns readings sent."""
    spool = target.spool_dir / folder
    fleet = Fleet(scenario, target.mqtt, spool, AgentTuning(), part, credentials)
    fleet.connect(timeout_s=60)
    try:
        fleet.real_time(threading.Event())
        if not fleet.drain(timeout_s=120):
            _LOGGER.error("venues %s: the broker did not acknowledge everything", part)
    finally:
        fleet.close()
    return fleet.truth.total


def load(
    target: Target,
    venues: int,
    taps: int,
    interval_s: int,
    seconds: int,
    settle_s: float = 120.0,
) -> LoadReport:
    """N venues x M taps sampling every `interval_s` in real time against a running stack,
    spread over processes; then compares what was sent with what InfluxDB holds."""
    prefix = f"load-{secrets.token_hex(3)}"
    scenario = simple_scenario(
        venues, taps, sample_interval_s=interval_s, duration_s=seconds, name=prefix
    )
    scenario = msgspec.structs.replace(
        scenario, fleet=sc.Fleet(venues=venues, taps=taps, id_prefix=prefix)
    )
    parts = [
        range(i, min(i + VENUES_PER_LOAD_PROCESS, venues))
        for i in range(0, venues, VENUES_PER_LOAD_PROCESS)
    ]
    credentials = register(target, scenario)
    # Registering a large fleet takes seconds: real time starts once it is done.
    scenario = sc.shifted(scenario, datetime.now(UTC))
    started = time.monotonic()
    with ProcessPoolExecutor(len(parts), mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [
            pool.submit(_load_part, target, scenario, part, prefix, credentials) for part in parts
        ]
        sent = sum(future.result() for future in futures)
    elapsed = time.monotonic() - started
    influx = InfluxQL(target.influx)
    try:
        deadline = time.monotonic() + settle_s
        stored = 0
        while time.monotonic() < deadline:
            try:
                stored = stored_readings(influx, f"{re.escape(prefix)}-.*")
            except InfluxError as exc:
                _LOGGER.warning("InfluxDB: %s", exc)
            if stored >= sent:
                break
            time.sleep(1)
    finally:
        influx.close()
    return LoadReport(venues, taps, venues * taps / interval_s, elapsed, sent, stored)
