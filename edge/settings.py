"""The `[mqtt]` settings: where the broker is and how to log in. Plain data, no pydantic.

The agent ships alone to a venue's small computer, so its settings validate themselves here;
the server's settings (`stack.settings`) use this same class for their `[mqtt]` section
(pydantic validates a dataclass field by field, then runs `__post_init__`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

PORT_RANGE = (1, 65535)
KEEPALIVE_RANGE_S = (5, 3600)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where the broker is and how a client logs in to it."""

    # A misspelt key in a config file must be an error, not a silently ignored line.
    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    host: str = "127.0.0.1"
    port: int = 18830
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    keepalive_s: int = 30

    def __post_init__(self) -> None:
        problems = []
        if not PORT_RANGE[0] <= self.port <= PORT_RANGE[1]:
            problems.append(f"port must be {PORT_RANGE[0]}..{PORT_RANGE[1]}, not {self.port}")
        if not KEEPALIVE_RANGE_S[0] <= self.keepalive_s <= KEEPALIVE_RANGE_S[1]:
            problems.append(
                f"keepalive_s must be {KEEPALIVE_RANGE_S[0]}..{KEEPALIVE_RANGE_S[1]}, "
                f"not {self.keepalive_s}"
            )
        if problems:
            raise ValueError("; ".join(problems))
