"""Did a tasting campaign sell more of its beer? Difference in differences, pure.

Per venue: litres of the campaign beer a day in the weeks before the campaign and during it.
The estimate is the targeted venues' mean change less the comparable untargeted venues' mean
change: what the campaign added per targeted venue a day, with whatever moved both groups
(the festival itself, the season, a warm week) taken out. Its 95% interval comes from a
bootstrap over venues (each group resampled with replacement), so it is as wide as the venues
differ, not as the days do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_PER_GROUP = 3  # venues on each side: fewer give an interval that means nothing
DRAWS = 4000
LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class VenueRates:
    venue: str
    targeted: bool
    before_l_per_day: float
    during_l_per_day: float

    @property
    def change(self) -> float:
        return self.during_l_per_day - self.before_l_per_day


@dataclass(frozen=True, slots=True)
class Uplift:
    targeted: int
    comparable: int
    litres_per_day: float | None  # per targeted venue
    low: float | None
    high: float | None
    share: float | None  # of the targeted venues' rate before
    reason: str | None = None  # why there is no estimate


def estimate(targeted: np.ndarray, comparable: np.ndarray) -> float:
    return float(targeted.mean() - comparable.mean())


def uplift(rates: Sequence[VenueRates], *, draws: int = DRAWS, seed: int = 0) -> Uplift:
    t = np.array([r.change for r in rates if r.targeted])
    c = np.array([r.change for r in rates if not r.targeted])
    if len(t) < MIN_PER_GROUP or len(c) < MIN_PER_GROUP:
        return Uplift(len(t), len(c), None, None, None, None,
                      reason=f"not enough comparable venues: {len(t)} targeted and {len(c)} "
                      f"untargeted pour the beer; each side needs {MIN_PER_GROUP}")  # fmt: skip
    rng = np.random.default_rng(seed)
    boot = (t[rng.integers(0, len(t), (draws, len(t)))].mean(axis=1)
            - c[rng.integers(0, len(c), (draws, len(c)))].mean(axis=1))  # fmt: skip
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    before = float(np.mean([r.before_l_per_day for r in rates if r.targeted]))
    value = estimate(t, c)
    return Uplift(len(t), len(c), value, float(low), float(high),
                  value / before if before > 0 else None)  # fmt: skip
