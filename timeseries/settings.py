"""The `[influx]` settings section: where InfluxDB is and how to reach it. `stack.settings`
composes it with the other sections; `docs/settings.md` documents every key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class InfluxSettings(BaseModel):
    """Where readings are written. `transport=auto` picks v1 or v2 from the server's version."""

    # A misspelt key in a config file must be an error, not a silently ignored line.
    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:18086"
    database: str = Field("tapsense", pattern=r"^[A-Za-z0-9_]{1,64}$")
    transport: Literal["auto", "v1", "v2"] = "auto"
    token: str | None = None
    org: str | None = None
    bucket: str | None = None
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")
