"""The API's settings: its `[api]` section, and `ApiSetup`, everything the API is given to
start. `stack.settings` composes the section with the others; `docs/settings.md` documents it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edge.settings import MqttSettings
from timeseries.settings import InfluxSettings


class ApiSettings(BaseModel):
    """Where the HTTP API listens."""

    # A misspelt key in a config file must be an error, not a silently ignored line.
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(18000, ge=1, le=65535)


@dataclass(frozen=True, slots=True)
class ApiSetup:
    """What the API is given: the registry, InfluxDB, the broker devices are told to use (and
    whose health it reports), and the managed broker's auth folder (None: not managed)."""

    registry_url: str
    influx: InfluxSettings
    mqtt: MqttSettings
    broker_auth_dir: Path | None
