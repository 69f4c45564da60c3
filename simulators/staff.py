"""The bar staff of a simulated fleet: they record keg changes in the registry as they happen
in the simulated world, through the same `registry.changes` the API and the CLI call (and,
as scenarios may say, forget some)."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from registry import changes
from registry.db import transaction
from registry.inputs import KegChangeIn
from registry.models import Tap, Venue
from simulators.world import TruthEvent

_LOGGER = logging.getLogger(__name__)


class Staff:
    """Records each keg change it is told of; callable from the fleet's threads.

    `pause_s`: how long to hold the simulation after recording, so that ingest has read the
    change before the readings that follow it arrive. In fast-forward an hour of bar time
    passes in a second of ours, while ingest looks at the registry every `registry.refresh_s`:
    without the pause a change recorded on time would reach it an hour of readings late."""

    def __init__(self, engine: Engine, pause_s: float = 0.0) -> None:
        self._engine = engine
        self._pause_s = pause_s
        self._lock = threading.Lock()

    def __call__(self, event: TruthEvent) -> None:
        keg = KegChangeIn(keg_l=float(event.detail["keg_l"]), at_ms=event.ts_ms)
        with self._lock, transaction(self._engine) as db:
            venue = db.get(Venue, event.venue)
            tap = db.get(Tap, (event.venue, event.tap))
            if venue is None or tap is None:
                _LOGGER.warning("keg change on %s/%s: not registered", event.venue, event.tap)
                return
            changes.change_keg(db, venue, tap, keg)
        if self._pause_s:
            time.sleep(self._pause_s)
