"""Sensor drivers: the interface the agent reads taps through, and a simulated implementation.

The simulated tap is shared by the edge agent (for a demo or a bench test without hardware) and
the simulators. Reads may block on real hardware; the agent calls them from its own thread.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass


class TapDriver(ABC):
    """One tap's sensors: the beer-line temperature probe and the flow meter."""

    tap: str

    @abstractmethod
    def temperature_c(self, now_ms: int) -> float | None:
        """The line temperature now, or None when the probe gave no reading."""

    @abstractmethod
    def ticks(self, now_ms: int) -> int:
        """Flow-meter pulses counted since the previous call."""


@dataclass(slots=True)
class TapModel:
    """What a simulated tap is like; the defaults are a well-run lager tap."""

    set_point_c: float = 4.0
    noise_c: float = 0.05
    idle_warming_c_per_h: float = 0.6  # the line warms between pours, the cooler pulls it back
    pours_per_hour: float = 12.0
    pour_ml: float = 500.0
    flow_ml_per_s: float = 120.0
    k_factor: float = 5600.0


class SimulatedTap(TapDriver):
    """A tap whose beer temperature and pours follow `TapModel`, deterministic for a seed.

    Time comes from the caller, so the same tap runs in real time or fast-forward.
    """

    def __init__(self, tap: str, model: TapModel, seed: int) -> None:
        self.tap = tap
        self.model = model
        self._rng = random.Random(seed)
        self._line_c = model.set_point_c
        self._last_ms: int | None = None
        self._last_tick_ms: int | None = None
        self._pour_left_ml = 0.0
        self._tick_carry = 0.0

    def _advance(self, now_ms: int) -> None:
        dt_s = 0.0 if self._last_ms is None else max(0, now_ms - self._last_ms) / 1000
        if self._last_ms is not None and now_ms <= self._last_ms:
            return
        self._last_ms = now_ms
        m = self.model
        # Relax towards a line temperature a little above the set point; pouring pulls cold
        # beer through and resets it.
        equilibrium = m.set_point_c + m.idle_warming_c_per_h
        self._line_c += (equilibrium - self._line_c) * (1 - math.exp(-dt_s / 3600))
        if self._pour_left_ml <= 0 and dt_s > 0:
            p_start = 1 - math.exp(-m.pours_per_hour * dt_s / 3600)
            if self._rng.random() < p_start:
                self._pour_left_ml = m.pour_ml * self._rng.uniform(0.5, 1.1)

    def temperature_c(self, now_ms: int) -> float | None:
        self._advance(now_ms)
        return round(self._line_c + self._rng.gauss(0, self.model.noise_c), 3)

    def ticks(self, now_ms: int) -> int:
        self._advance(now_ms)
        dt_s = 0.0 if self._last_tick_ms is None else max(0, now_ms - self._last_tick_ms) / 1000
        self._last_tick_ms = now_ms
        if self._pour_left_ml <= 0 or dt_s == 0:
            return 0
        ml = min(self._pour_left_ml, self.model.flow_ml_per_s * dt_s)
        self._pour_left_ml -= ml
        self._line_c = self.model.set_point_c
        self._tick_carry += ml / 1000 * self.model.k_factor
        whole = int(self._tick_carry)
        self._tick_carry -= whole
        return whole
