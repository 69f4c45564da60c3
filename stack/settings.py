"""Tapsense settings: one definition, read from `TAPSENSE_*` variables and an optional TOML file.

Precedence, highest first: keyword arguments, environment variables (`TAPSENSE_MQTT__PORT=1884`),
the TOML file named by `TAPSENSE_CONFIG` (or `./tapsense.toml` when it exists), then the
defaults below. Every default is documented in `docs/settings.md`; keep the two together.

The default ports are not the well-known ones (1883, 8086) on purpose: on Debian, installing the
`mosquitto` and `influxdb` packages starts system services on those ports, and the local stack
must not collide with them.
"""

from __future__ import annotations

import json
import os
import tomllib
from functools import cached_property
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as PydanticSettingsError

from edge.settings import MqttSettings
from registry.settings import DEFAULT_AUTH_DIR, RegistrySettings
from timeseries.settings import InfluxSettings

CONFIG_ENV = "TAPSENSE_CONFIG"
DEFAULT_CONFIG_FILE = Path("tapsense.toml")


class _Section(BaseModel):
    # A misspelt key in a config file must be an error, not a silently ignored line.
    model_config = ConfigDict(extra="forbid")


class IngestSettings(_Section):
    """The ingest worker: its MQTT session, batching and limits."""

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


class QualitySettings(_Section):
    """Thresholds for taps and venues the registry says nothing more of (per beer, tap and
    venue it does: serving temperature, keg size, line-cleaning policy)."""

    warm_max_c: float = 7.0
    warm_hysteresis_c: float = Field(0.5, ge=0)
    warm_grace_s: float = Field(120.0, ge=0)
    trend_horizon_min: float = Field(30.0, gt=0)
    trend_min_slope_c_per_h: float = Field(1.0, gt=0)
    # The trend window takes one reading per this many seconds: 32 of them span 16 minutes.
    trend_step_s: float = Field(30.0, ge=0)
    stuck_after_min: float = Field(30.0, gt=0)
    dead_after_min: float = Field(15.0, gt=0)
    plausible_min_c: float = -5.0
    plausible_max_c: float = 40.0
    max_rate_c_per_s: float = Field(0.5, gt=0)
    cooler_tap_slope_c_per_h: float = Field(1.5, gt=0)
    cooler_share_on: float = Field(0.6, gt=0, le=1)
    cooler_share_off: float = Field(0.3, ge=0, le=1)
    cooler_min_taps: int = Field(2, ge=1)
    keg_l: float = Field(50.0, gt=0)
    keg_low_share: float = Field(0.15, ge=0, le=1)
    keg_horizon_min: float = Field(120.0, ge=0)
    leak_ml_per_s: float = Field(1.0, gt=0)
    leak_min_s: float = Field(120.0, gt=0)
    foam_c: float = 9.0
    foam_ml_per_s: float = Field(200.0, gt=0)
    line_cleaning_days: float = Field(14.0, gt=0)
    # At least this often the worker checkpoints: saves the kernels' state and acknowledges
    # what it stored since the last checkpoint (sooner under load; see ingest/worker.py).
    snapshot_every_s: float = Field(5.0, gt=0)


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(18000, ge=1, le=65535)


class Settings(BaseSettings):
    """Everything a Tapsense service needs to start."""

    model_config = SettingsConfigDict(
        env_prefix="TAPSENSE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Path(".tapsense")
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ingest: IngestSettings = IngestSettings()
    quality: QualitySettings = QualitySettings()
    api: ApiSettings = ApiSettings()
    registry: RegistrySettings = RegistrySettings()

    @property
    def broker_auth_dir(self) -> Path | None:
        """Where the managed broker's users and ACL live: `registry.broker_auth_dir`, or the
        folder `tapsense up` made under `home` (so `tapsense simulate` in another terminal
        reloads the broker `up` runs); None when neither: a broker Tapsense does not manage."""
        if self.registry.broker_auth_dir is not None:
            return self.registry.broker_auth_dir
        default = self.home / DEFAULT_AUTH_DIR
        return default if default.is_dir() else None

    @property
    def registry_url(self) -> str:
        return self.registry.url or f"sqlite:///{self.home.resolve() / 'registry.sqlite'}"

    @cached_property
    def deadletter_path(self) -> Path:
        return self.home / "deadletter.sqlite"

    @cached_property
    def inflight_path(self) -> Path:
        return self.home / "inflight.sqlite"

    @cached_property
    def quality_snapshot_path(self) -> Path:
        return self.home / "quality-state.npz"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


class SettingsError(ValueError):
    """Settings that cannot be used, with every reason at once."""


def load_settings() -> Settings:
    """The settings in force, or a `SettingsError` that says what is wrong and where: invalid
    values (all of them), a missing or unreadable config file, a file that is not TOML."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(str(exc)) from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, PydanticSettingsError) as exc:
        where = os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE
        if isinstance(exc, PydanticSettingsError):  # a variable that is not valid JSON
            raise SettingsError(f"{exc}: {exc.__cause__}") from exc
        if isinstance(exc, FileNotFoundError):
            raise SettingsError(str(exc)) from exc
        raise SettingsError(f"{where}: not a readable TOML file: {exc}") from exc


def config_file() -> Path | None:
    """The TOML file to read, if any; a named file that does not exist is an error."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV}={named}: no such file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def environment(settings: Settings) -> dict[str, str]:
    """The settings as `TAPSENSE_*` variables, so a child process reads the same ones."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, item in items:
            if item is None:
                continue
            var = f"TAPSENSE_{name}" if key is None else f"TAPSENSE_{name}__{key}"
            env[var.upper()] = item if isinstance(item, str) else json.dumps(item)
    return env
