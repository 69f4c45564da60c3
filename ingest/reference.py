"""Plain-Python reference implementations of the quality kernels: slow, obvious, trusted.

Tests compare every kernel with its reference; benchmarks use them as the baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WarmBeerLimits:
    max_c: float
    clear_c: float
    grace_ms: int


def warm_beer(
    readings: Iterable[tuple[int, int, float]], limits: Sequence[WarmBeerLimits]
) -> list[tuple[int, int, int, float]]:
    """Events (tap, ts, state, temp) for readings (tap, ts, temp) in arrival order."""
    last_ts: dict[int, int] = {}
    warm: set[int] = set()
    above_since: dict[int, int] = {}
    events = []
    for tap, ts, temp in readings:
        if tap in last_ts and ts <= last_ts[tap]:
            continue  # duplicate or late: stored, but does not move the state
        last_ts[tap] = ts
        limit = limits[tap]
        if tap in warm:
            if temp <= limit.clear_c:
                warm.discard(tap)
                above_since.pop(tap, None)
                events.append((tap, ts, 0, temp))
        elif temp > limit.max_c:
            since = above_since.setdefault(tap, ts)
            if ts - since >= limit.grace_ms:
                warm.add(tap)
                events.append((tap, ts, 1, temp))
        else:
            above_since.pop(tap, None)
    return events
