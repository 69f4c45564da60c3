"""Pour detection from flow-meter pulses. Pure: (time, ticks) in, finished pours out.

A flow meter gives `k_factor` ticks per litre (calibrated per tap). A pour starts at the first
tick and ends after `idle_gap_ms` without ticks; pours under `min_ml` are drips, not pours.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_K_FACTOR = 5600.0  # ticks per litre; a common hall-effect meter is ~5,600


@dataclass(frozen=True, slots=True)
class FlowCalibration:
    k_factor: float = DEFAULT_K_FACTOR
    idle_gap_ms: int = 1500
    min_ml: float = 15.0
    # A flow that never stops (a leak, a tap left open) is reported in pieces this long.
    max_duration_ms: int = 300_000

    def __post_init__(self) -> None:
        if not self.k_factor > 0:
            raise ValueError(f"k_factor must be > 0 ticks per litre, not {self.k_factor}")
        if self.idle_gap_ms <= 0:
            raise ValueError(f"idle_gap_ms must be > 0, not {self.idle_gap_ms}")


@dataclass(frozen=True, slots=True)
class DetectedPour:
    end_ms: int
    ml: float
    duration_ms: int


class PourDetector:
    """Turns a tap's tick counts, sampled over time, into pours."""

    def __init__(self, calibration: FlowCalibration) -> None:
        self._cal = calibration
        self._start_ms: int | None = None
        self._last_tick_ms = 0
        self._ticks = 0

    def feed(self, now_ms: int, ticks: int) -> DetectedPour | None:
        """Ticks counted since the previous call; returns a pour when one has ended."""
        if ticks < 0:
            raise ValueError(f"tick count cannot be negative: {ticks}")
        if ticks:
            if self._start_ms is None:
                self._start_ms = now_ms
            self._ticks += ticks
            self._last_tick_ms = now_ms
            if now_ms - self._start_ms < self._cal.max_duration_ms:
                return None
            return self._finish()
        if self._start_ms is None or now_ms - self._last_tick_ms < self._cal.idle_gap_ms:
            return None
        return self._finish()

    def _finish(self) -> DetectedPour | None:
        assert self._start_ms is not None
        ml = self._ticks / self._cal.k_factor * 1000.0
        pour = DetectedPour(self._last_tick_ms, ml, self._last_tick_ms - self._start_ms)
        self._start_ms, self._ticks = None, 0
        return pour if ml >= self._cal.min_ml else None
