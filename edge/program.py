"""The agent as a program on a venue's small computer: its config file, its hardware taps, and
the loop that reads them, seals, publishes and reports its state.

The config file is the one provisioning hands out (`POST /venues/{venue}/devices`,
`tapsense registry device`), used as is: `[agent]` and `[mqtt]`. What only the venue knows is
added to it: which probe and which flow-meter line belong to which tap.

    [agent]                       # from provisioning
    venue = "cafe-dom"
    device = "edge-1"
    spool_path = "/var/lib/tapsense-agent/spool.sqlite"
    sample_s = 30                 # how often the probes are recorded (default 30)
    seal_s = 5                    # readings are sealed into the spool at least this often
    confirm_stored = true         # keep each message until ingest stored it (default true)
    spool_max_messages = 200000   # past this (or a full disk) the oldest go, counted

    [mqtt]                        # from provisioning
    host = "broker.example.com"
    ...

    [hardware]                    # optional
    w1_root = "/sys/bus/w1/devices"
    gpio_chip = "/dev/gpiochip0"
    edges_file = ""               # a recorded edge stream instead of the GPIO chip

    [taps.tap-01]
    probe = "28-0316a2791bff"     # see `tapsense-agent probes`
    flow_line = 17                # the GPIO line of its flow meter
    k_factor = 5600               # pulses per litre (`tapsense-agent calibrate`)
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge import onewire
from edge.agent import AgentConfig, EdgeAgent
from edge.drivers import TapDriver
from edge.flowmeter import (
    EdgeSource,
    GpiodEdges,
    PulseCounter,
    RecordedEdges,
    count_edges,
)
from edge.pour import DEFAULT_K_FACTOR, FlowCalibration
from edge.settings import MqttSettings

_LOGGER = logging.getLogger(__name__)

# A clock before this is one that has not been set since boot (a Pi has no battery clock):
# readings are held, stamped by the monotonic clock, until it is.
PLAUSIBLE_SINCE_MS = 1_704_067_200_000  # 2024-01-01
FLOW_POLL_S = 0.1
STATUS_EVERY_S = 5.0


class ConfigError(ValueError):
    """A config file that cannot be used, with the file and the key."""


@dataclass(frozen=True, slots=True)
class TapWiring:
    probe: str | None = None
    flow_line: int | None = None
    k_factor: float = DEFAULT_K_FACTOR


@dataclass(frozen=True, slots=True)
class AgentFile:
    agent: AgentConfig
    mqtt: MqttSettings
    taps: dict[str, TapWiring] = field(default_factory=dict)
    sample_s: float = 30.0
    seal_s: float = 5.0
    w1_root: Path = onewire.W1_ROOT
    gpio_chip: Path = Path("/dev/gpiochip0")
    edges_file: Path | None = None

    @property
    def state_dir(self) -> Path:
        return self.agent.spool_path.parent

    @property
    def status_path(self) -> Path:
        return self.state_dir / "status.json"


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return value


def load(path: Path, *, state_dir: Path | None = None) -> AgentFile:
    """The agent's config file; `state_dir` puts the spool (and status) elsewhere."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"agent", "mqtt", "hardware", "taps"}
    if unknown:
        raise ConfigError(f"{path}: unknown sections {sorted(unknown)}")
    agent = dict(_section(data, "agent", path))
    timing = {key: agent.pop(key) for key in ("sample_s", "seal_s") if key in agent}
    # The program keeps each reading until ingest says it stored it (see edge/agent.py).
    agent.setdefault("confirm_stored", True)
    if state_dir is not None:
        agent["spool_path"] = str(state_dir / "spool.sqlite")
    agent_config = _build(AgentConfig, agent, path, "agent")
    mqtt = _build(MqttSettings, _section(data, "mqtt", path), path, "mqtt")
    hardware = _section(data, "hardware", path)
    taps = {
        str(tap): _build(TapWiring, wiring, path, f"taps.{tap}")
        for tap, wiring in _section(data, "taps", path).items()
    }
    extra = set(hardware) - {"w1_root", "gpio_chip", "edges_file"}
    if extra:
        raise ConfigError(f"{path}: [hardware] has unknown keys {sorted(extra)}")
    for name, value in timing.items():
        if not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{path}: [agent] {name} must be a positive number of seconds")
    edges = hardware.get("edges_file")
    return AgentFile(
        agent_config, mqtt, taps, float(timing.get("sample_s", 30.0)),
        float(timing.get("seal_s", 5.0)), Path(hardware.get("w1_root", onewire.W1_ROOT)),
        Path(hardware.get("gpio_chip", "/dev/gpiochip0")),
        (path.parent / edges) if edges else None,
    )  # fmt: skip


def _build(kind: type, values: dict[str, Any], path: Path, section: str) -> Any:
    known = {f.name for f in fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{path}: [{section}] has unknown keys {sorted(unknown)}")
    converted = dict(values)
    for f in fields(kind):
        if f.name in converted and "Path" in str(f.type) and isinstance(converted[f.name], str):
            converted[f.name] = Path(converted[f.name])
    try:
        return kind(**converted)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [{section}] {exc}") from exc


def with_k_factor(text: str, tap: str, k_factor: float) -> str:
    """The config file's text with `k_factor` set under `[taps.<tap>]` (the rest as it was)."""
    lines = text.splitlines(keepends=True)
    header = f"[taps.{tap}]"
    start = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if start is None:
        raise ConfigError(f"no [taps.{tap}] in the config")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
               len(lines))  # fmt: skip
    setting = f"k_factor = {k_factor:.1f}\n"
    for i in range(start + 1, end):
        if lines[i].split("=")[0].strip() == "k_factor":
            lines[i] = setting
            return "".join(lines)
    lines.insert(start + 1, setting)
    return "".join(lines)


def calibration_line(config: AgentFile, tap: str, poured_ml: float) -> int:
    """The flow-meter line to calibrate, or why it cannot be."""
    wiring = config.taps.get(tap)
    if wiring is None or wiring.flow_line is None:
        raise ConfigError(f"tap {tap!r} has no flow_line in the config")
    if not poured_ml > 0:
        raise ConfigError("--poured-ml must be more than 0")
    return wiring.flow_line


def calibrate(
    config: AgentFile,
    tap: str,
    poured_ml: float,
    timeout_s: float,
    edge_source: EdgeSource | None = None,
) -> tuple[int, float]:
    """Count one measured pour on the tap's flow meter: (pulses, pulses per litre). The pour
    ends when no pulse came for the pour detector's idle gap after the first."""
    line = calibration_line(config, tap, poured_ml)
    source = edge_source or (RecordedEdges(config.edges_file) if config.edges_file
                             else GpiodEdges(config.gpio_chip, [line]))  # fmt: skip
    counter = PulseCounter([line])
    stop = threading.Event()
    thread = threading.Thread(target=count_edges, args=(source, counter, stop), daemon=True)
    thread.start()
    idle_s = FlowCalibration().idle_gap_ms / 1000
    pulses, last_pulse = 0, None
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            stop.wait(FLOW_POLL_S)
            new = counter.take(line)
            now = time.monotonic()
            if new:
                pulses += new
                last_pulse = now
            elif last_pulse is not None and now - last_pulse >= idle_s:
                break
    finally:
        stop.set()
    if not pulses:
        raise ConfigError(f"no pulses on line {line} in {timeout_s:.0f} s: is the meter on "
                          "that line, and was beer poured?")  # fmt: skip
    return pulses, pulses / (poured_ml / 1000)


class HardwareTap(TapDriver):
    """A tap wired to a probe (read by the `ProbeReader`'s thread) and a flow-meter line
    (counted by the edge thread)."""

    def __init__(self, tap: str, wiring: TapWiring, reader: onewire.ProbeReader,
                 counter: PulseCounter) -> None:  # fmt: skip
        self.tap = tap
        self.wiring = wiring
        self.calibration = FlowCalibration(k_factor=wiring.k_factor)
        self._reader = reader
        self._counter = counter
        self._recorded_at = 0
        self.problem: str | None = None

    def temperature_c(self, now_ms: int) -> float | None:
        """The probe's latest reading, once: None when there is no new usable one."""
        if self.wiring.probe is None:
            return None
        latest = self._reader.latest(self.wiring.probe)
        if latest is None or latest[0] <= self._recorded_at:
            return None
        self._recorded_at = latest[0]
        self.problem = latest[1].problem
        return latest[1].c

    def ticks(self, now_ms: int) -> int:
        return 0 if self.wiring.flow_line is None else self._counter.take(self.wiring.flow_line)


class Program:
    """Runs until `stop`: reads, seals, publishes, and writes `status.json` for `status`."""

    def __init__(self, config: AgentFile, edge_source: EdgeSource | None = None,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:  # fmt: skip
        """`wall_ms`: the system clock (a test passes one that starts in 1970)."""
        self.config = config
        self._wall_ms = wall_ms
        self.agent = EdgeAgent(config.agent, config.mqtt, clock_ms=self._clock_ms)
        self.agent.holding = not self._clock_set()
        serials = [w.probe for w in config.taps.values() if w.probe]
        self._reader = onewire.ProbeReader(serials, config.w1_root, every_s=config.sample_s / 2)
        lines = [w.flow_line for w in config.taps.values() if w.flow_line is not None]
        self._counter = PulseCounter(lines)
        if edge_source is None and lines:
            edge_source = (RecordedEdges(config.edges_file) if config.edges_file
                           else GpiodEdges(config.gpio_chip, lines))  # fmt: skip
        self._edges = edge_source
        self.taps = [HardwareTap(t, w, self._reader, self._counter)
                     for t, w in config.taps.items()]  # fmt: skip
        self._last: dict[str, dict[str, Any]] = {}
        self._clock_warned = False

    def run(self, stop: threading.Event) -> None:
        if not self.taps:
            _LOGGER.warning("no taps in the config: add [taps.<id>] with a probe and a flow "
                            "line (`tapsense-agent probes` lists the probes)")  # fmt: skip
        self._reader.start()
        edge_thread = None
        if self._edges is not None:
            edge_thread = threading.Thread(
                target=count_edges, args=(self._edges, self._counter, stop),
                name="flow-edges", daemon=True,
            )  # fmt: skip
            edge_thread.start()
        self.agent.connect()
        next_sample = next_seal = next_status = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if self.agent.holding and self._clock_set():
                    self._clock_came()
                for tap in self.taps:
                    self.agent.sample_flow(tap, tap.calibration)
                if now >= next_sample:
                    self._sample_temperatures()
                    next_sample = now + self.config.sample_s
                if now >= next_seal:
                    self.agent.seal()
                    next_seal = now + self.config.seal_s
                self.agent.pump()
                if now >= next_status:
                    self.write_status()
                    next_status = now + STATUS_EVERY_S
                stop.wait(FLOW_POLL_S)
        finally:
            self.agent.seal()
            self.agent.pump()
            self._reader.stop()
            self.write_status()
            self.agent.close()

    def _clock_set(self) -> bool:
        return self._wall_ms() >= PLAUSIBLE_SINCE_MS

    def _clock_ms(self) -> int:
        """Wall time once the clock is set; before, monotonic time (which `restamp` shifts)."""
        if not self.agent.holding:
            return self._wall_ms()
        if not self._clock_warned:
            _LOGGER.warning("the clock is not set (it says 1970): readings are held, to be "
                            "stamped once it is (NTP)")  # fmt: skip
            self._clock_warned = True
        return time.monotonic_ns() // 1_000_000

    def _clock_came(self) -> None:
        offset = self._wall_ms() - time.monotonic_ns() // 1_000_000
        held = self.agent.restamp(offset)
        _LOGGER.info("the clock is set: %d held readings stamped and sealed", held)

    def _sample_temperatures(self) -> None:
        now_ms = self._clock_ms()
        for tap in self.taps:
            c = tap.temperature_c(now_ms)
            if c is not None:
                self.agent.record_temperature(tap.tap, now_ms, c)
                self._last[tap.tap] = {"ts": now_ms, "c": c}

    def write_status(self) -> None:
        """What `tapsense-agent status` shows; replaced atomically."""
        spool = self.agent.spool
        status = {
            "pid": os.getpid(),
            "written_ms": int(time.time() * 1000),
            "connected": self.agent.connected.is_set(),
            "refused": self.agent.refused,
            "spool_depth": spool.depth(),
            "oldest_unsent_ms": spool.oldest_reading_ms(),
            "lost_readings": spool.lost()[1],
            "last_puback_ms": self.agent.last_puback_ms,
            "unconfirmed": self.agent.unconfirmed,
            "counters": {
                "sealed": self.agent.counters.sealed,
                "readings": self.agent.counters.readings,
                "acknowledged": self.agent.counters.acknowledged,
                "refused": self.agent.counters.refused,
                "pulse_bounces": self._counter.bounces,
                "held_dropped": self.agent.counters.held_dropped,
            },
            "taps": {
                tap.tap: {
                    "probe": tap.wiring.probe,
                    "flow_line": tap.wiring.flow_line,
                    "last_temperature": self._last.get(tap.tap),
                    "problem": tap.problem,
                }
                for tap in self.taps
            },
        }
        path = self.config.status_path
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(status, indent=2))
        os.replace(partial, path)
