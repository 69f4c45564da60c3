"""The warm-beer kernel agrees with its plain reference, whatever the stream and its batching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import reference
from ingest.quality import Level, QualityCore
from stack.settings import QualitySettings

SETTINGS = QualitySettings(warm_max_c=7.0, warm_hysteresis_c=0.5, warm_grace_s=2.0)
LIMIT = reference.WarmBeerLimits(max_c=7.0, clear_c=6.5, grace_ms=2000)
T0 = 1_700_000_000_000

readings = st.lists(
    st.tuples(
        st.integers(0, 3),  # tap
        st.integers(0, 20_000),  # ms after T0: small range, so duplicates and late ones happen
        st.sampled_from([4.0, 6.5, 6.9, 7.0, 7.01, 9.0, -55.0, 125.0])
        | st.floats(-55, 125, allow_nan=False),
    ),
    max_size=300,
)


def run_kernel(stream: list[tuple[int, int, float]], cuts: list[int]) -> list[tuple]:
    core = QualityCore(SETTINGS)
    for tap in range(4):
        core.tap_index("venue", f"tap{tap}")
    events = []
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for start, stop in itertools.pairwise(bounds):
        part = stream[start:stop]
        tap = np.array([r[0] for r in part], np.int32)
        ts = np.array([T0 + r[1] for r in part], np.int64)
        temp = np.array([r[2] for r in part], np.float64)
        for e in core.warm_beer(tap, ts, temp):
            events.append(
                (int(e.tap[3:]), e.ts - T0, 1 if e.level is Level.WARNING else 0, e.value)
            )
    return events


@settings(max_examples=300, deadline=None)
@given(readings, st.lists(st.integers(0, 400), max_size=6))
def test_kernel_matches_reference_for_any_batching(stream, cuts):
    expected = reference.warm_beer(stream, [LIMIT] * 4)
    assert run_kernel(stream, []) == expected
    assert run_kernel(stream, cuts) == expected


def test_warm_after_grace_and_ok_again_below_hysteresis():
    stream = [(0, 0, 8.0), (0, 1000, 8.0), (0, 2000, 8.0), (0, 3000, 6.8), (0, 4000, 6.4)]
    assert run_kernel(stream, []) == [(0, 2000, 1, 8.0), (0, 4000, 0, 6.4)]


def test_a_dip_below_the_limit_restarts_the_grace_period():
    stream = [(0, 0, 8.0), (0, 1500, 6.9), (0, 1600, 8.0), (0, 3500, 8.0), (0, 3600, 8.0)]
    assert run_kernel(stream, []) == [(0, 3600, 1, 8.0)]


def test_duplicates_and_late_readings_do_not_move_the_state():
    stream = [(0, 0, 8.0), (0, 2000, 4.0), (0, 1000, 8.0), (0, 2000, 9.0), (0, 2500, 8.0)]
    assert run_kernel(stream, []) == []


def test_wrapper_refuses_unknown_tap_indexes():
    core = QualityCore(SETTINGS)
    with pytest.raises(ValueError, match="tap_index"):
        core.warm_beer(np.array([0], np.int32), np.array([T0]), np.array([4.0]))


def test_tap_table_grows_past_its_initial_capacity():
    core = QualityCore(SETTINGS)
    indexes = [core.tap_index("v", f"t{i}") for i in range(5000)]
    assert indexes == list(range(5000))
    assert core.tap_index("v", "t4999") == 4999
    events = core.warm_beer(np.array([4999], np.int32), np.array([T0]), np.array([30.0]))
    assert events == [] and core.above_since[4999] == T0
