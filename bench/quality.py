"""Quality-core throughput: every check on, 10,000 taps, 10 million readings.

    .venv/bin/python -m bench.quality [--taps 10000] [--readings 10000000]

Prints readings/s of the Numba kernels, of the plain-Python references (on a slice: they are
slow) and of a NumPy formulation of the part that vectorises (range check and the windowed
trend slope), all measured in this run, as ratios; and the state memory per tap.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ingest import kernels as K
from ingest.quality import _TAP_STATE, QualityCore, tap_params, venue_params, warm_up
from ingest.reference import ReferenceQuality
from ingest.settings import QualitySettings

T0 = 1_750_000_000_000
SAMPLE_MS = 30_000
TAPS_PER_VENUE = 8


def stream(taps: int, readings: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every tap sampled every 30 s, round robin: a random walk near 4.5 °C with noise."""
    rng = np.random.default_rng(seed)
    k = np.arange(readings)
    tap = (k % taps).astype(np.int32)
    ts = T0 + (k // taps).astype(np.int64) * SAMPLE_MS
    walk = np.cumsum(rng.normal(0, 0.01, readings)).reshape(-1, 1)
    temp = (4.5 + np.clip(walk, -1, 1)[:, 0] + rng.normal(0, 0.05, readings)).round(3)
    return tap, ts, temp


def pours_for(taps: int, n: int, seed: int = 2) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    tap = rng.integers(0, taps, n).astype(np.int32)
    ts = np.sort(rng.integers(T0, T0 + 86_400_000, n)).astype(np.int64)
    return tap, ts, rng.uniform(200, 600, n), rng.integers(2000, 6000, n).astype(np.int64)


def numba_rate(core: QualityCore, data: tuple[np.ndarray, ...], batch: int) -> float:
    tap, ts, temp = data
    started = time.perf_counter()
    for start in range(0, tap.shape[0], batch):
        end = start + batch
        core.temperatures(tap[start:end], ts[start:end], temp[start:end])
    return tap.shape[0] / (time.perf_counter() - started)


def reference_rate(settings: QualitySettings, taps: int, data: tuple[np.ndarray, ...]) -> float:
    row, vrow = list(tap_params(settings)), list(venue_params(settings))
    venues = (taps + TAPS_PER_VENUE - 1) // TAPS_PER_VENUE
    ref = ReferenceQuality(
        [row] * taps, [i // TAPS_PER_VENUE for i in range(taps)], [vrow] * venues
    )
    rows = list(zip(data[0].tolist(), data[1].tolist(), data[2].tolist(), strict=True))
    started = time.perf_counter()
    ref.temperatures(rows)
    return len(rows) / (time.perf_counter() - started)


def numpy_rate(settings: QualitySettings, data: tuple[np.ndarray, ...]) -> float:
    """What vectorises: the range check and a 32-sample least-squares slope per tap (sorted by
    tap, windowed sums by cumulative sums). Hysteresis, grace periods and state carried
    between batches do not; this is a lower bound on what a NumPy core would cost."""
    tap, ts, temp = data
    started = time.perf_counter()
    implausible = (temp < settings.plausible_min_c) | (temp > settings.plausible_max_c)
    order = np.lexsort((ts, tap))
    t = ts[order].astype(np.float64) / 1000.0
    y = temp[order]
    w = K.WINDOW

    def windowed(values: np.ndarray) -> np.ndarray:
        c = np.concatenate(([0.0], np.cumsum(values)))
        out = c[w:] - c[:-w]
        return np.concatenate((np.full(w - 1, np.nan), out))

    t = t - t[0]
    n = float(w)
    sx, sy = windowed(t), windowed(y)
    sxx, sxy = windowed(t * t), windowed(t * y)
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    first_of_tap = np.r_[True, tap[order][1:] != tap[order][:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_tap, np.arange(len(t)), 0))
    slope[np.arange(len(t)) - group_start < w - 1] = np.nan  # windows must not span two taps
    _ = implausible.sum() + np.nansum(slope > settings.trend_min_slope_c_per_h / 3600)
    return tap.shape[0] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--taps", type=int, default=10_000)
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--reference-readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()

    settings = QualitySettings()
    warm_up()
    data = stream(args.taps, args.readings)
    core = QualityCore(settings)
    for i in range(args.taps):
        core.tap_index(f"venue-{i // TAPS_PER_VENUE:05d}", f"tap-{i % TAPS_PER_VENUE:02d}")

    fast = numba_rate(core, data, args.batch)
    pours = pours_for(args.taps, args.readings // 20)
    started = time.perf_counter()
    core.pours(*pours)
    pour_rate = pours[0].shape[0] / (time.perf_counter() - started)
    head = tuple(a[: args.reference_readings] for a in data)
    slow = reference_rate(settings, args.taps, head)
    vector = numpy_rate(settings, data)
    per_tap = sum(core.state[name][0:1].nbytes for name in _TAP_STATE)

    print(f"quality core, {args.taps:,} taps, {args.readings:,} readings, every check on:")
    print(f"  Numba kernels          {fast:>14,.0f} readings/s (batches of {args.batch:,})")
    print(f"  Numba pour checks      {pour_rate:>14,.0f} pours/s ({pours[0].shape[0]:,} pours)")
    print(f"  plain Python reference {slow:>14,.0f} readings/s (first {len(head[0]):,})")
    print(f"  NumPy, range + slope   {vector:>14,.0f} readings/s (a subset of the checks)")
    print(
        f"ratios: Numba / Python = {fast / slow:.0f}x, Numba / NumPy subset = {fast / vector:.1f}x"
    )
    total_mb = per_tap * args.taps / 1e6
    print(f"state per tap: {per_tap} bytes ({total_mb:.1f} MB for {args.taps:,} taps)")


if __name__ == "__main__":
    main()
