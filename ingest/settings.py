"""The ingest service's settings: its `[ingest]` and `[quality]` sections, and `IngestSetup`,
everything the service is given to start. `stack.settings` composes the sections with the
others; `docs/settings.md` documents every key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.settings import MqttSettings
from timeseries.settings import InfluxSettings


class IngestSettings(BaseModel):
    """The ingest worker: its MQTT session, batching and limits."""

    # A misspelt key in a config file must be an error, not a silently ignored line.
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field("tapsense-ingest-0", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # One shard's topic filter: the venue segment. `+` means every venue.
    venue_filter: str = "+"
    # The broker may have this many unacknowledged messages with us at once (MQTT 5 Receive
    # Maximum). A batch never holds more, so the stream cannot stall on our own held acks.
    receive_maximum: int = Field(1000, ge=1, le=65535)
    batch_max_messages: int = Field(500, ge=1)
    batch_linger_ms: int = Field(50, ge=0, le=10_000)
    max_payload_bytes: int = Field(256 * 1024, ge=1024)
    retry_initial_s: float = Field(0.2, gt=0)
    retry_max_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _batch_fits_window(self) -> IngestSettings:
        # A batch holds its acks until written: a batch the broker cannot fill would stall.
        if self.batch_max_messages > self.receive_maximum:
            raise ValueError(
                f"batch_max_messages ({self.batch_max_messages}) must not exceed "
                f"receive_maximum ({self.receive_maximum})"
            )
        return self


class QualitySettings(BaseModel):
    """Thresholds for taps and venues the registry says nothing more of (per beer, tap and
    venue it does: serving temperature, keg size, line-cleaning policy)."""

    model_config = ConfigDict(extra="forbid")

    warm_max_c: float = 7.0
    # The low end of a beer's serving range: a fast drop to no lower than this (less a 2 °C
    # margin) is a pour flushing a warm line, not a glitch. Per beer from the registry.
    serving_min_c: float = 2.0
    warm_hysteresis_c: float = Field(0.5, ge=0)
    warm_grace_s: float = Field(120.0, ge=0)
    trend_horizon_min: float = Field(30.0, gt=0)
    trend_min_slope_c_per_h: float = Field(1.0, gt=0)
    # A warming forecast is announced once it has held this long without moving later (a
    # line settling after a pour slows down, so its forecast keeps receding).
    trend_confirm_min: float = Field(5.0, ge=0)
    # The trend window takes one reading per this many seconds: 32 of them span 16 minutes.
    trend_step_s: float = Field(30.0, ge=0)
    stuck_after_min: float = Field(30.0, gt=0)
    dead_after_min: float = Field(15.0, gt=0)
    plausible_min_c: float = -5.0
    plausible_max_c: float = 40.0
    max_rate_c_per_s: float = Field(0.5, gt=0)
    cooler_share_on: float = Field(0.6, gt=0, le=1)
    cooler_share_off: float = Field(0.3, ge=0, le=1)
    cooler_min_taps: int = Field(2, ge=1)
    keg_l: float = Field(50.0, gt=0)
    keg_low_share: float = Field(0.15, ge=0, le=1)
    keg_horizon_min: float = Field(120.0, ge=0)
    leak_ml_per_s: float = Field(1.0, gt=0)
    leak_min_s: float = Field(120.0, gt=0)
    # A leak is over once no flow was reported for this long while the probe kept reporting
    # (the agent reports an endless flow in pieces of at most 5 minutes).
    leak_clear_min: float = Field(10.0, gt=0)
    # A raised check clears only after its condition stayed clear this long: no flapping.
    clear_hold_min: float = Field(10.0, ge=0)
    # Pours past an empty keg adding up to this share of a keg: a new keg went on that nobody
    # recorded; ingest records it as inferred (correctable through the API).
    keg_infer_share: float = Field(0.2, gt=0, le=1)
    foam_c: float = 9.0
    foam_ml_per_s: float = Field(200.0, gt=0)
    line_cleaning_days: float = Field(14.0, gt=0)
    # At least this often the worker checkpoints: saves the kernels' state and acknowledges
    # what it stored since the last checkpoint (sooner under load; see ingest/worker.py).
    snapshot_every_s: float = Field(5.0, gt=0)


@dataclass(frozen=True, slots=True)
class IngestSetup:
    """What the ingest service is given: its own sections, where the broker, InfluxDB and the
    registry are, and the folder for its state (dead letters, in-flight marks, the kernels'
    checkpoint)."""

    ingest: IngestSettings
    quality: QualitySettings
    mqtt: MqttSettings
    influx: InfluxSettings
    registry_url: str
    registry_refresh_s: float
    state_dir: Path

    @property
    def deadletter_path(self) -> Path:
        return self.state_dir / "deadletter.sqlite"

    @property
    def inflight_path(self) -> Path:
        return self.state_dir / "inflight.sqlite"

    @property
    def quality_snapshot_path(self) -> Path:
        return self.state_dir / "quality-state.npz"
