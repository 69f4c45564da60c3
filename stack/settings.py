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
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as PydanticSettingsError

from alerts.settings import AlertsSettings, AlertsSetup, SmtpSettings
from api.settings import ApiSettings, ApiSetup
from edge.settings import MqttSettings
from ingest.settings import IngestSettings, IngestSetup, QualitySettings
from registry.settings import DEFAULT_AUTH_DIR, RegistrySettings
from reports.settings import ReportsSettings, ReportsSetup
from simulators.target import Target
from timeseries.settings import InfluxSettings

CONFIG_ENV = "TAPSENSE_CONFIG"
DEFAULT_CONFIG_FILE = Path("tapsense.toml")


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
    alerts: AlertsSettings = AlertsSettings()
    smtp: SmtpSettings = SmtpSettings()
    reports: ReportsSettings = ReportsSettings()

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

    def for_ingest(self) -> IngestSetup:
        return IngestSetup(
            ingest=self.ingest, quality=self.quality, mqtt=self.mqtt, influx=self.influx,
            registry_url=self.registry_url, registry_refresh_s=self.registry.refresh_s,
            state_dir=self.home,
        )  # fmt: skip

    def for_alerts(self) -> AlertsSetup:
        return AlertsSetup(alerts=self.alerts, smtp=self.smtp, mqtt=self.mqtt,
                           influx=self.influx, registry_url=self.registry_url)  # fmt: skip

    def for_reports(self) -> ReportsSetup:
        return ReportsSetup(reports=self.reports, smtp=self.smtp, influx=self.influx,
                            registry_url=self.registry_url)  # fmt: skip

    def for_simulators(self) -> Target:
        return Target(
            mqtt=self.mqtt, influx=self.influx, registry_url=self.registry_url,
            broker_auth_dir=self.broker_auth_dir, spool_dir=self.home / "spool",
            registry_refresh_s=self.registry.refresh_s,
        )  # fmt: skip

    def for_api(self) -> ApiSetup:
        return ApiSetup(
            registry_url=self.registry_url, influx=self.influx, mqtt=self.mqtt,
            broker_auth_dir=self.broker_auth_dir,
        )  # fmt: skip

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
