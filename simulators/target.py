"""Where the simulators play: what `tapsense simulate` and `tapsense load` are given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.settings import MqttSettings
from timeseries.settings import InfluxSettings


@dataclass(frozen=True, slots=True)
class Target:
    """The stack a simulation plays against: its broker, InfluxDB (read back by `load`), the
    registry the fleet is registered in (and the managed broker's auth folder, None if not
    managed), and the folder for the simulated agents' spools."""

    mqtt: MqttSettings
    influx: InfluxSettings
    registry_url: str
    broker_auth_dir: Path | None
    spool_dir: Path
    registry_refresh_s: float = 1.0  # how often ingest looks at the registry
