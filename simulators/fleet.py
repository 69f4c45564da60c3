"""Running a scenario: its venues' real edge agents, driven by one simulated clock.

`fast_forward` walks the clock through the scenario as fast as the agents can publish (a month
of backfill in minutes), `real_time` follows the wall clock. Every reading the sensors produce
and everything that really happened is recorded as ground truth, which tests and load runs
compare with what InfluxDB holds and what Tapsense concluded.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from tqdm import tqdm

from edge.agent import AgentConfig, EdgeAgent
from edge.pour import FlowCalibration
from edge.settings import MqttSettings
from edge.wire import Pour, Temperature
from simulators import scenario as sc
from simulators.world import FLOW_POLL_MS, SimTap, SimVenue, TruthEvent, ms

DEVICE = "edge-1"  # every simulated venue has one edge agent, this one

# paho's network loop uses select(), which fails for file descriptors above 1,024, and each
# agent holds about six (its socket and paho's wake-up pair, its spool's three SQLite files).
# Larger fleets run in several processes (`simulators.run.load`).
MAX_AGENTS_PER_PROCESS = 150


@dataclass(frozen=True, slots=True)
class AgentTuning:
    """How the simulated venues' agents publish; fast-forward wants no catch-up limit."""

    readings_per_message: int = 50
    max_inflight: int = 20
    catchup_messages_per_s: float = 1e6


@dataclass(slots=True)
class GroundTruth:
    """Every reading the simulated sensors produced, and what really happened."""

    temps: list[tuple[str, Temperature]] = field(default_factory=list)
    pours: list[tuple[str, Pour]] = field(default_factory=list)
    events: list[TruthEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, venue: str, reading: Temperature | Pour) -> None:
        with self._lock:
            if isinstance(reading, Temperature):
                self.temps.append((venue, reading))
            else:
                self.pours.append((venue, reading))

    def happened(self, event: TruthEvent) -> None:
        with self._lock:
            self.events.append(event)

    def write(self, folder: Path) -> None:
        """`readings.jsonl` (what was sent) and `events.jsonl` (what happened)."""
        folder.mkdir(parents=True, exist_ok=True)
        encode = msgspec.json.encode
        with (folder / "readings.jsonl").open("wb") as out:
            for kind, rows in (("temperature", self.temps), ("pour", self.pours)):
                for venue, reading in rows:
                    row = {"kind": kind, "venue": venue, **msgspec.structs.asdict(reading)}
                    out.write(encode(row) + b"\n")
        with (folder / "events.jsonl").open("wb") as out:
            for event in sorted(self.events, key=lambda e: (e.ts_ms, e.venue, e.tap or "")):
                out.write(encode(event) + b"\n")

    @property
    def total(self) -> int:
        return len(self.temps) + len(self.pours)


def simple_scenario(
    venues: int,
    taps: int,
    *,
    seed: int = 1,
    sample_interval_s: int = 30,
    start: datetime | None = None,
    duration_s: int = 3600,
    name: str = "fleet",
) -> sc.Scenario:
    """A scenario of `venues` alike venues and no events (for `tapsense up --fleet` and tests)."""
    return sc.Scenario(
        name=name,
        start=start or datetime.now(UTC),
        duration=f"{duration_s}s",
        seed=seed,
        sample_interval=f"{sample_interval_s}s",
        fleet=sc.Fleet(venues=venues, taps=taps),
    )


def venue_specs(scenario: sc.Scenario) -> list[sc.Venue]:
    """Every venue of the scenario, the fleet's generated ones included."""
    specs = list(scenario.venues)
    listed = {v.id for v in specs}
    fleet = scenario.fleet
    if fleet is not None:
        rng = random.Random(scenario.seed)
        for venue_id in sc.venue_ids(scenario)[len(specs) :]:
            if venue_id in listed:
                continue
            # Spread generated venues around the fleet's centre (a degree of latitude: 111 km).
            distance, bearing = (
                fleet.spread_km * math.sqrt(rng.random()),
                rng.uniform(0, 2 * math.pi),
            )
            lat = fleet.lat + distance / 111 * math.cos(bearing)
            lon = fleet.lon + distance / (111 * math.cos(math.radians(fleet.lat))) * math.sin(
                bearing
            )
            specs.append(sc.Venue(id=venue_id, city=fleet.city, lat=lat, lon=lon, taps=fleet.taps))
    return specs


def _login(
    settings: MqttSettings, credentials: Mapping[str, tuple[str, str]] | None, venue: str
) -> MqttSettings:
    if credentials is None or venue not in credentials:
        return settings
    username, password = credentials[venue]
    return replace(settings, username=username, password=password)


def _network(
    net: sc.Network, seed: int
) -> Callable[[list[tuple[int, bytes]]], list[tuple[int, bytes]]] | None:
    if not (net.duplicates or net.reorder):
        return None
    rng = random.Random(seed)

    def apply(batch: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        for item in batch:
            out.append(item)
            if rng.random() < net.duplicates:
                out.append(item)
        for i in range(len(out) - 1):
            if rng.random() < net.reorder:
                out[i], out[i + 1] = out[i + 1], out[i]
        return out

    return apply


def _device_clock(venue: SimVenue) -> Callable[[], int]:
    """The venue device's clock: simulated time, off by any clock skew in force."""

    def now() -> int:
        return venue.now_ms + venue.clock_skew_ms(venue.now_ms)

    return now


class Fleet:
    """A scenario's venues, each with a real edge agent and a disk spool, on one clock."""

    def __init__(
        self,
        scenario: sc.Scenario,
        mqtt_settings: MqttSettings,
        spool_dir: Path,
        tuning: AgentTuning = AgentTuning(),
        part: range | None = None,
        credentials: Mapping[str, tuple[str, str]] | None = None,
        staff: Callable[[TruthEvent], None] | None = None,
    ) -> None:
        """`part`: only these venues of the scenario (by index), for a fleet split over
        processes; the rest of the scenario is the same in every part. `credentials`: each
        venue's device login (`simulators.provision`); none for an anonymous broker. `staff`:
        called with each keg change the bar staff record and each pour a coupon brought
        (`simulators.staff` writes them to the registry, as the API or the CLI would)."""
        self.scenario = scenario
        self.truth = GroundTruth()
        self._staff = staff
        self.calibration = FlowCalibration()
        self.step_ms = sc.seconds(scenario.sample_interval) * 1000
        self.now_ms = ms(scenario.start)
        self.end_ms = self.now_ms + sc.seconds(scenario.duration) * 1000
        self.venues: list[tuple[SimVenue, EdgeAgent]] = []
        specs = list(enumerate(venue_specs(scenario)))
        if part is not None:
            specs = specs[part.start : part.stop]
        if len(specs) > MAX_AGENTS_PER_PROCESS:
            raise ValueError(
                f"{len(specs)} venues in one process; at most {MAX_AGENTS_PER_PROCESS} fit "
                f"(paho's select() loop): split the fleet with `part`"
            )
        for index, spec in specs:
            venue = SimVenue(spec, scenario, index, self._happened)
            agent = EdgeAgent(
                AgentConfig(
                    venue=spec.id,
                    device=DEVICE,
                    spool_path=spool_dir / f"{spec.id}.sqlite",
                    readings_per_message=tuning.readings_per_message,
                    max_inflight=tuning.max_inflight,
                    catchup_messages_per_s=tuning.catchup_messages_per_s,
                    spool_durable=False,
                ),
                _login(mqtt_settings, credentials, spec.id),
                clock_ms=_device_clock(venue),
                observer=self.truth.record,
                network=_network(scenario.network, scenario.seed * 7 + index),
            )
            self.venues.append((venue, agent))

    def _happened(self, event: TruthEvent) -> None:
        self.truth.happened(event)
        if self._staff is None:
            return
        recorded_keg = event.kind == "keg_change" and event.detail.get("recorded") == "true"
        coupon_pour = event.kind == "pour" and event.detail.get("coupon") == "true"
        if recorded_keg or coupon_pour:
            self._staff(event)

    @property
    def agents(self) -> Iterator[EdgeAgent]:
        return (agent for _, agent in self.venues)

    def connect(self, timeout_s: float = 30.0) -> None:
        for agent in self.agents:
            agent.connect()
        deadline = time.monotonic() + timeout_s
        for agent in self.agents:
            if not agent.connected.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"{agent.config.venue}: no broker connection in {timeout_s} s")

    def _flow_polls(self, tap: SimTap, t0: int, t1: int) -> list[int]:
        """When the agent reads a tap's meter in (t0, t1]: through every flow and its idle gap."""
        gap = self.calibration.idle_gap_ms + FLOW_POLL_MS
        polls: set[int] = set()
        for flow in tap.flows:
            first = max(flow.start_ms, t0)
            last = min(flow.end_ms + gap, t1)
            polls.update(range(first - first % FLOW_POLL_MS + FLOW_POLL_MS, last, FLOW_POLL_MS))
        return sorted(polls)

    def step(self, *, seal: bool) -> None:
        """Advance every venue by one sample interval; agents read their taps. `seal` closes
        each agent's message now (real time) instead of when it is full (fast-forward)."""
        t0, t1 = self.now_ms, self.now_ms + self.step_ms
        for venue, agent in self.venues:
            if venue.opens_ms is not None and t1 <= venue.opens_ms:
                venue.now_ms = t1  # not open yet: no guests, no sensors
                continue
            venue.advance(t1)
            for tap in venue.taps:
                for poll in self._flow_polls(tap, t0, t1):
                    venue.now_ms = poll
                    agent.sample_flow(tap, self.calibration)
                venue.now_ms = t1
                agent.sample_flow(tap, self.calibration)
            agent.sample_temperatures(venue.taps)
            if seal:
                agent.seal()
        self.now_ms = t1

    def pump(self) -> int:
        """Publish what each online venue has spooled."""
        return sum(agent.pump() for venue, agent in self.venues if not venue.offline(self.now_ms))

    def advance_to(self, end_ms: int, *, progress: bool = False) -> None:
        steps = max(0, (end_ms - self.now_ms) // self.step_ms)
        for _ in tqdm(range(steps), desc=self.scenario.name, unit="step", disable=not progress):
            self.step(seal=False)
            self.pump()
        for agent in self.agents:
            agent.seal()

    def fast_forward(self, *, progress: bool = False) -> None:
        """Simulate the whole scenario, publishing as fast as acknowledgements allow."""
        self.advance_to(self.end_ms, progress=progress)

    def real_time(self, stop: threading.Event) -> None:
        """Step on the wall clock (the scenario should start now) until its end or `stop`."""
        while not stop.is_set() and self.now_ms < self.end_ms:
            if time.time() * 1000 >= self.now_ms + self.step_ms:
                self.step(seal=True)
            self.pump()
            stop.wait(0.05)

    def drain(self, timeout_s: float = 120.0) -> bool:
        """Publish until every spool is empty; False if that took longer than `timeout_s`."""
        for agent in self.agents:
            agent.seal()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump()
            if all(agent.drained() for agent in self.agents):
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        for agent in self.agents:
            agent.close()
