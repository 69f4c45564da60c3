"""Ingest's view of the registry: the directory, reloaded every `registry.refresh_s`.

A message from a venue or device the view does not know makes it reload first, so a venue
registered a moment ago is not refused for the view being stale. To keep a flood of messages
from unknown senders from turning into a flood of queries, each sender triggers at most one
reload a second, and all of them together at most `EARLY_RELOADS_PER_S`.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine

from registry.directory import Directory, TapEvent, load_directory, refusal, tap_events_since

_LOGGER = logging.getLogger(__name__)
EARLY_RELOADS_PER_S = 10
_REFUSED_MEMORY = 10_000  # senders remembered; forgotten all at once beyond this


class RegistryView:
    def __init__(self, engine: Engine, refresh_s: float) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        self.directory: Directory = {}
        self.loaded_at = 0.0
        self._refused: dict[tuple[str, str], float] = {}
        self._early: list[float] = []
        self.reload()

    def reload(self) -> None:
        self.directory = load_directory(self._engine)
        self.loaded_at = time.monotonic()
        _LOGGER.debug("registry: %d venues", len(self.directory))

    def due(self) -> bool:
        return time.monotonic() - self.loaded_at >= self._refresh_s

    def refusal(self, venue: str, device: str) -> str | None:
        """Why a message from `venue`/`device` must be refused, if it must."""
        reason = refusal(self.directory, venue, device)
        if reason is None:
            return None
        now = time.monotonic()
        key = (venue, device)
        self._early = [t for t in self._early if now - t < 1.0]
        if now - self._refused.get(key, -1.0) >= 1.0 and len(self._early) < EARLY_RELOADS_PER_S:
            self._early.append(now)
            self.reload()
            reason = refusal(self.directory, venue, device)
        if len(self._refused) >= _REFUSED_MEMORY:
            self._refused.clear()
        self._refused[key] = now
        return reason

    def tap_events_since(self, keg_id: int, cleaning_id: int) -> list[TapEvent]:
        return tap_events_since(self._engine, keg_id, cleaning_id)
