"""Sensor drivers: the interface the agent reads taps through.

The simulated implementation is `simulators.world.SimTap`; real ones (DS18B20 over 1-Wire,
pulse flow meters) implement the same interface. Reads may block on real hardware; the agent
calls them from its own thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class TapDriver(ABC):
    """One tap's sensors: the beer-line temperature probe and the flow meter."""

    tap: str

    @abstractmethod
    def temperature_c(self, now_ms: int) -> float | None:
        """The line temperature now, or None when the probe gave no reading."""

    @abstractmethod
    def ticks(self, now_ms: int) -> int:
        """Flow-meter pulses counted since the previous call."""
