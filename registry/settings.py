"""The `[registry]` settings section: where the registry database is, and the broker whose
users and ACL it manages. `stack.settings` composes it; `docs/settings.md` documents it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_AUTH_DIR = "mosquitto-auth"  # under `home`, for the broker `tapsense up` runs


class RegistrySettings(BaseModel):
    """The registry database: venues, taps, beers, devices, keys (see `registry/`)."""

    # A misspelt key in a config file must be an error, not a silently ignored line.
    model_config = ConfigDict(extra="forbid")

    # Any SQLAlchemy URL; unset: a SQLite file `registry.sqlite` under `home`.
    url: str | None = None
    # How often ingest looks whether the registry changed (one tiny query), and if it did
    # re-reads venues, thresholds, keg changes and cleanings.
    refresh_s: float = Field(1.0, gt=0)
    # A broker whose users and ACL the registry manages (`tapsense up` sets it): provisioning
    # and revoking devices rewrite the files here and make the broker reload them. Unset: the
    # broker is someone else's; Tapsense writes nothing.
    broker_auth_dir: Path | None = None
