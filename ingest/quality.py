"""Per-tap quality state and the Python side of the kernels: validate, convert, call, build events.

The worker owns one `QualityCore`. Taps get a dense index on first sight; their state lives in
growable NumPy arrays (structure of arrays) that the kernels update in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from ingest import kernels
from stack.settings import QualitySettings

_LOGGER = logging.getLogger(__name__)

_INITIAL_CAPACITY = 1024


class Check(StrEnum):
    WARM_BEER = "warm_beer"


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"


_LEVELS = {kernels.STATE_OK: Level.OK, kernels.STATE_WARM: Level.WARNING}


@dataclass(frozen=True, slots=True)
class QualityEvent:
    """A tap's check changed level at `ts` (device time, ms); `value` is the evidence."""

    venue: str
    tap: str
    check: Check
    level: Level
    ts: int
    value: float


class QualityCore:
    """The quality state of every tap this worker has seen, and the checks over it."""

    def __init__(self, settings: QualitySettings) -> None:
        self._settings = settings
        self._index: dict[tuple[str, str], int] = {}
        self.taps: list[tuple[str, str]] = []
        self._alloc(_INITIAL_CAPACITY)

    def _alloc(self, capacity: int) -> None:
        def grow(old: np.ndarray | None, dtype: type, fill: float | np.integer) -> np.ndarray:
            new: np.ndarray = np.full(capacity, fill, dtype=dtype)
            if old is not None:
                new[: old.shape[0]] = old
            return new

        get = self.__dict__.get
        self.last_ts = grow(get("last_ts"), np.int64, kernels.NO_TIME)
        self.above_since = grow(get("above_since"), np.int64, kernels.NO_TIME)
        self.state = grow(get("state"), np.int8, kernels.STATE_OK)
        self.max_c = grow(get("max_c"), np.float64, self._settings.warm_max_c)
        self.clear_c = grow(
            get("clear_c"),
            np.float64,
            self._settings.warm_max_c - self._settings.warm_hysteresis_c,
        )
        self.grace_ms = grow(get("grace_ms"), np.int64, round(self._settings.warm_grace_s * 1000))

    def tap_index(self, venue: str, tap: str) -> int:
        key = (venue, tap)
        index = self._index.get(key)
        if index is None:
            index = len(self.taps)
            if index == self.last_ts.shape[0]:
                self._alloc(2 * index)
            self._index[key] = index
            self.taps.append(key)
        return index

    def warm_beer(self, tap: np.ndarray, ts: np.ndarray, temp_c: np.ndarray) -> list[QualityEvent]:
        """Run the warm-beer check over readings in arrival order; return the changes."""
        if not (tap.shape == ts.shape == temp_c.shape):
            raise ValueError(f"column lengths differ: {tap.shape}, {ts.shape}, {temp_c.shape}")
        n = tap.shape[0]
        if n and (tap.min() < 0 or tap.max() >= len(self.taps)):
            raise ValueError("tap index out of range: get indexes from tap_index()")
        ev_tap = np.empty(n, np.int32)
        ev_ts = np.empty(n, np.int64)
        ev_state = np.empty(n, np.int8)
        ev_temp = np.empty(n, np.float64)
        count = kernels.warm_beer(
            np.ascontiguousarray(tap, np.int32),
            np.ascontiguousarray(ts, np.int64),
            np.ascontiguousarray(temp_c, np.float64),
            self.last_ts,
            self.above_since,
            self.state,
            self.max_c,
            self.clear_c,
            self.grace_ms,
            ev_tap,
            ev_ts,
            ev_state,
            ev_temp,
        )
        return [
            QualityEvent(
                self.taps[ev_tap[k]][0],
                self.taps[ev_tap[k]][1],
                Check.WARM_BEER,
                _LEVELS[int(ev_state[k])],
                int(ev_ts[k]),
                float(ev_temp[k]),
            )
            for k in range(count)
        ]


def warm_up() -> None:
    """Compile (or load from cache) every kernel now, not on the first message."""
    core = QualityCore(QualitySettings())
    index = core.tap_index("warm-up", "warm-up")
    core.warm_beer(np.array([index], np.int32), np.array([1], np.int64), np.array([4.0]))
    _LOGGER.debug("quality kernels ready")
