"""A fleet of simulated venues: N venues x M taps, each venue one real edge agent.

Time is simulated: `fast_forward` walks a clock through a period as fast as the agents can
publish (a month of backfill in minutes), `real_time` follows the wall clock. Every reading the
sensors produce is recorded as ground truth, which tests and load runs compare with what
InfluxDB holds. The same seed gives the same readings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from tqdm import tqdm

from edge.agent import AgentConfig, EdgeAgent
from edge.drivers import SimulatedTap, TapModel
from edge.pour import FlowCalibration
from edge.wire import Pour, Temperature
from stack.settings import MqttSettings

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FleetConfig:
    venues: int = 3
    taps_per_venue: int = 4
    seed: int = 1
    sample_interval_s: float = 5.0
    readings_per_message: int = 50
    catchup_messages_per_s: float = 1e6  # fast-forward: as fast as the broker acknowledges
    max_inflight: int = 20

    def __post_init__(self) -> None:
        if self.venues < 1 or self.taps_per_venue < 1:
            raise ValueError("a fleet needs at least one venue with one tap")
        if self.sample_interval_s <= 0:
            raise ValueError("sample_interval_s must be > 0")


def venue_id(index: int) -> str:
    return f"venue-{index + 1:03d}"


def tap_id(index: int) -> str:
    return f"tap-{index + 1:02d}"


@dataclass(slots=True)
class GroundTruth:
    """Every reading the simulated sensors produced, by venue."""

    temps: list[tuple[str, Temperature]] = field(default_factory=list)
    pours: list[tuple[str, Pour]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, venue: str, reading: Temperature | Pour) -> None:
        with self._lock:
            if isinstance(reading, Temperature):
                self.temps.append((venue, reading))
            else:
                self.pours.append((venue, reading))

    def write_jsonl(self, path: Path) -> None:
        with path.open("wb") as out:
            for kind, rows in (("temperature", self.temps), ("pour", self.pours)):
                for venue, reading in rows:
                    line = {"kind": kind, "venue": venue, **msgspec.structs.asdict(reading)}
                    out.write(msgspec.json.encode(line) + b"\n")

    @property
    def total(self) -> int:
        return len(self.temps) + len(self.pours)


class Fleet:
    """The simulated venues and their agents, driven by one simulated clock."""

    def __init__(self, config: FleetConfig, mqtt_settings: MqttSettings, spool_dir: Path) -> None:
        self.config = config
        self.truth = GroundTruth()
        self.now_ms = 0
        self.calibration = FlowCalibration()
        self.venues: list[tuple[EdgeAgent, list[SimulatedTap]]] = []
        for v in range(config.venues):
            venue = venue_id(v)
            agent_config = AgentConfig(
                venue=venue,
                device="edge-1",
                spool_path=spool_dir / f"{venue}.sqlite",
                readings_per_message=config.readings_per_message,
                max_inflight=config.max_inflight,
                catchup_messages_per_s=config.catchup_messages_per_s,
            )
            agent = EdgeAgent(
                agent_config,
                mqtt_settings,
                clock_ms=lambda: self.now_ms,
                observer=self.truth.record,
            )
            taps = [
                SimulatedTap(tap_id(t), TapModel(), seed=config.seed * 1_000_003 + v * 1_009 + t)
                for t in range(config.taps_per_venue)
            ]
            self.venues.append((agent, taps))

    @property
    def agents(self) -> Iterator[EdgeAgent]:
        return (agent for agent, _ in self.venues)

    def connect(self, timeout_s: float = 30.0) -> None:
        for agent in self.agents:
            agent.connect()
        deadline = time.monotonic() + timeout_s
        for agent in self.agents:
            if not agent.connected.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"{agent.config.venue}: no broker connection in {timeout_s} s")

    def step(self, now_ms: int) -> None:
        self.now_ms = now_ms
        for agent, taps in self.venues:
            agent.sample(taps, self.calibration)

    def pump(self) -> int:
        return sum(agent.pump() for agent in self.agents)

    def fast_forward(self, start_ms: int, duration_s: float, *, progress: bool = False) -> None:
        """Simulate `duration_s` from `start_ms`, publishing as fast as acknowledgements allow."""
        step_ms = round(self.config.sample_interval_s * 1000)
        steps = int(duration_s * 1000 // step_ms)
        for k in tqdm(range(steps), desc="simulated samples", unit="step", disable=not progress):
            self.step(start_ms + k * step_ms)
            self.pump()
        for agent in self.agents:
            agent.seal()

    def real_time(self, stop: threading.Event) -> None:
        """Sample on the wall clock every `sample_interval_s` until `stop`."""
        interval = self.config.sample_interval_s
        next_sample = time.monotonic()
        while not stop.is_set():
            if time.monotonic() >= next_sample:
                self.step(int(time.time() * 1000))
                for agent in self.agents:
                    agent.seal()
                next_sample += interval
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
