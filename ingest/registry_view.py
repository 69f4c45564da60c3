"""Ingest's view of the registry: the directory, re-read whenever the registry's generation
(one row, bumped by every change ingest cares about) moves.

The worker looks at the generation every `registry.refresh_s`. A message from a venue or device
the view does not know makes it look at once, so a venue registered a moment ago is not
refused for the view being stale; a flood of messages from unknown senders costs at most
`CHECKS_PER_S` one-row queries a second, not one per message.

Whoever looks, every new directory goes to every follower (`follow`): the quality core's
thresholds can never lag behind the directory that admitted a message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from registry import changes
from registry.db import generation, transaction
from registry.directory import Directory, TapEvent, load_directory, refusal, tap_events_since

if TYPE_CHECKING:
    from ingest.quality import InferredKeg

_LOGGER = logging.getLogger(__name__)
CHECKS_PER_S = 100


class RegistryView:
    def __init__(self, engine: Engine, refresh_s: float) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        self.directory: Directory = {}
        self.generation = -1
        self.checked_at = 0.0
        self._checks: list[float] = []
        self._followers: list[Callable[[Directory], None]] = []
        self.refresh()

    def follow(self, follower: Callable[[Directory], None]) -> None:
        """Call `follower` with the directory now and with every new one."""
        self._followers.append(follower)
        follower(self.directory)

    def refresh(self) -> bool:
        """Re-read the directory if the registry changed; whether it did. A registry that does
        not answer leaves the directory as it was (and says so): ingest keeps going."""
        self.checked_at = time.monotonic()
        try:
            current = generation(self._engine)
            if current == self.generation:
                return False
            directory = load_directory(self._engine)
        except SQLAlchemyError as exc:
            _LOGGER.warning("registry unavailable, keeping what it said last: %s", exc)
            return False
        # The generation read first: a change landing during the read shows as newer next time.
        self.generation = current
        self.directory = directory
        _LOGGER.info("registry generation %d: %d venues", current, len(self.directory))
        for follower in self._followers:
            follower(directory)
        return True

    def due(self) -> bool:
        return time.monotonic() - self.checked_at >= self._refresh_s

    def refusal(self, venue: str, device: str) -> str | None:
        """Why a message from `venue`/`device` must be refused, if it must."""
        reason = refusal(self.directory, venue, device)
        if reason is None:
            return None
        now = time.monotonic()
        self._checks = [t for t in self._checks if now - t < 1.0]
        if len(self._checks) < CHECKS_PER_S:
            self._checks.append(now)
            if self.refresh():
                reason = refusal(self.directory, venue, device)
        return reason

    def record_inferred(self, kegs: list[InferredKeg]) -> None:
        """Keg changes the quality core concluded, into the registry (marked inferred) where
        staff see and correct them; a registry that does not answer loses only the record."""
        if not kegs:
            return
        try:
            with transaction(self._engine) as db:
                for keg in kegs:
                    if changes.record_inferred_keg(db, keg.venue, keg.tap, keg.at_ms, keg.keg_l):
                        _LOGGER.info("inferred a keg change on %s/%s at %d: nobody recorded it",
                                     keg.venue, keg.tap, keg.at_ms)  # fmt: skip
        except SQLAlchemyError as exc:
            _LOGGER.warning("registry unavailable, inferred keg changes not recorded: %s", exc)

    def tap_events_since(self, keg_id: int, cleaning_id: int) -> list[TapEvent]:
        try:
            return tap_events_since(self._engine, keg_id, cleaning_id)
        except SQLAlchemyError as exc:
            _LOGGER.warning("registry unavailable, keg changes and cleanings wait: %s", exc)
            return []
