"""The quality kernel agrees with its plain reference, whatever the stream and its batching,
and across a restart from a snapshot; its judgements do not depend on how a time-ordered stream
is cut into batches."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import kernels as K
from ingest.quality import Check, Level, QualityCore, QualityEvent, tap_params, venue_params
from ingest.reference import ReferenceQuality
from ingest.settings import QualitySettings
from registry.directory import TapConfig, VenueConfig

# Short times and tight limits, so that random streams of a few hundred readings reach them.
FAST = QualitySettings(
    warm_max_c=7.0, warm_hysteresis_c=0.5, warm_grace_s=2.0, trend_horizon_min=1.0,
    trend_min_slope_c_per_h=30.0, stuck_after_min=0.2, dead_after_min=0.5, max_rate_c_per_s=0.5,
    keg_l=2.0, keg_horizon_min=0.5, leak_min_s=20.0,
    line_cleaning_days=0.005,  # 7.2 minutes
    trend_step_s=3.0,  # readings 2 s apart: the window takes every other one
    clear_hold_min=0.0, leak_clear_min=0.5, trend_confirm_min=0.1,
)  # fmt: skip
# The same with a hold before a raised check clears (the deployed default is ten minutes).
HELD = FAST.model_copy(update={"clear_hold_min": 0.1})
T0 = 1_700_000_000_000
TAPS = [("v1", "a"), ("v1", "b"), ("v1", "c"), ("v2", "d"), ("v2", "e")]

temperatures = st.lists(
    st.tuples(
        st.integers(0, len(TAPS) - 1),
        st.integers(0, 600_000),  # ms after T0: duplicates and late ones happen
        st.sampled_from([4.0, 4.0, 6.5, 6.9, 7.0, 7.01, 9.0, 60.0, -10.0])
        | st.floats(-20, 50, allow_nan=False)
        | st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    ),
    max_size=400,
).map(lambda rows: sorted(rows, key=lambda r: r[1] + (r[0] * 7919 % 3000)))  # mostly in order
pours = st.lists(
    st.tuples(
        st.integers(0, len(TAPS) - 1),
        st.integers(0, 600_000),
        st.floats(1, 800, allow_nan=False),
        st.integers(0, 60_000),
        st.booleans(),  # after hours
    ),
    max_size=120,
).map(sorted)


def core(settings: QualitySettings = FAST) -> QualityCore:
    quality = QualityCore(settings)
    for venue, tap in TAPS:
        quality.tap_index(venue, tap)
    return quality


def reference(settings: QualitySettings = FAST) -> ReferenceQuality:
    venues = sorted({v for v, _ in TAPS})
    tap_venue = [venues.index(v) for v, _ in TAPS]
    row, vrow = list(tap_params(settings)), list(venue_params(settings))
    return ReferenceQuality([row] * len(TAPS), tap_venue, [vrow] * len(venues))


def tap_number(event: QualityEvent) -> int:
    """The test's tap index; a venue-wide event counts as its venue's first tap."""
    return next(
        i for i, (venue, tap) in enumerate(TAPS)
        if venue == event.venue and event.tap in (None, tap)
    )  # fmt: skip


def comparable(value: float) -> float | str:
    """NaN never equals itself; evidence that is NaN must still compare equal."""
    return "nan" if math.isnan(value) else value


def as_tuples(events: list[QualityEvent]) -> list[tuple]:
    # The kernel numbers checks and levels in the order the enums list them.
    return [
        (tap_number(e), e.ts - T0, list(Check).index(e.check), list(Level).index(e.level),
         comparable(e.value), comparable(e.detail))
        for e in events
    ]  # fmt: skip


def run_temps(quality: QualityCore, rows: list[tuple[int, int, float]]) -> list[QualityEvent]:
    return quality.temperatures(
        np.array([r[0] for r in rows], np.int32),
        np.array([T0 + r[1] for r in rows], np.int64),
        np.array([r[2] for r in rows], np.float64),
    )


def run_pours(quality: QualityCore, rows: list[tuple]) -> list[QualityEvent]:
    """Pours (tap, ms after T0, mL, duration ms[, after hours])."""
    return quality.pours(
        np.array([r[0] for r in rows], np.int32),
        np.array([T0 + r[1] for r in rows], np.int64),
        np.array([r[2] for r in rows], np.float64),
        np.array([r[3] for r in rows], np.int64),
        np.array([len(r) > 4 and r[4] for r in rows], np.bool_),
    )


def in_batches(rows: list, cuts: list[int]) -> list[list]:
    bounds = [0, *sorted(c % (len(rows) + 1) for c in cuts), len(rows)]
    return [rows[a:b] for a, b in itertools.pairwise(bounds)]


def reference_events(events: list[tuple]) -> list[tuple]:
    """Reference events with times relative to T0 and cooler events keyed like the kernel's."""
    out = []
    for tap, ts, check, level, value, detail in events:
        if check == K.COOLER_FAILURE:
            venue = TAPS[tap][0]
            tap = next(i for i, key in enumerate(TAPS) if key[0] == venue)
        out.append((tap, ts - T0, check, level, comparable(value), comparable(detail)))
    return out


Row = tuple[int, int, int, float, int, bool]  # kind, tap, ms after T0, value, duration, closed


def mixed(temps: list[tuple], pour_rows: list[tuple]) -> list[Row]:
    """Temperatures and pours as one stream in arrival order (interleaved by time, roughly)."""
    rows = [(K.TEMPERATURE, t, ts, c, 0, False) for t, ts, c in temps]
    rows += [(K.POUR, t, ts, ml, d, a) for t, ts, ml, d, a in pour_rows]
    return sorted(rows, key=lambda r: r[2] + (r[1] * 7919 % 3000))


def by_time(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r[2], r[0]))  # stable, like the kernel's sort


def run_rows(quality: QualityCore, rows: list[Row]) -> list[QualityEvent]:
    temps = [r for r in rows if r[0] == K.TEMPERATURE]
    pour_rows = [r for r in rows if r[0] == K.POUR]
    return quality.check(
        (np.array([r[1] for r in temps], np.int32), np.array([T0 + r[2] for r in temps], np.int64),
         np.array([r[3] for r in temps], np.float64)),
        (np.array([r[1] for r in pour_rows], np.int32),
         np.array([T0 + r[2] for r in pour_rows], np.int64),
         np.array([r[3] for r in pour_rows], np.float64),
         np.array([r[4] for r in pour_rows], np.int64),
         np.array([r[5] for r in pour_rows], np.bool_)),
    )  # fmt: skip


def reference_run(ref: ReferenceQuality, rows: list[Row]) -> list[tuple]:
    return reference_events(ref.readings((k, t, T0 + ts, v, d, a) for k, t, ts, v, d, a in rows))


@settings(max_examples=200, deadline=None)
@given(temperatures, pours, st.lists(st.integers(0, 600), max_size=6),
       st.sampled_from([FAST, HELD]))  # fmt: skip
def test_kernel_matches_reference_for_any_arrival_and_batching(temps, pour_rows, cuts, rules):
    """Each batch is judged in time order; the reference sees the batches' rows in that order."""
    batches = in_batches(mixed(temps, pour_rows), cuts)
    expected = reference_run(reference(rules), [row for b in batches for row in by_time(b)])
    quality = core(rules)
    assert as_tuples([e for b in batches for e in run_rows(quality, b)]) == expected


@settings(max_examples=200, deadline=None)
@given(temperatures, pours, st.lists(st.integers(0, 600), max_size=6),
       st.sampled_from([FAST, HELD]))  # fmt: skip
def test_a_time_ordered_stream_gives_the_same_events_however_it_is_batched(
    temps, pour_rows, cuts, rules
) -> None:
    """Foam, leaks and keg forecasts mixed with temperatures: pours are judged against the
    temperature at their own time, so cutting the stream anywhere changes nothing."""
    rows = by_time(mixed(temps, pour_rows))
    whole = as_tuples(run_rows(core(rules), rows))
    quality = core(rules)
    assert as_tuples([e for b in in_batches(rows, cuts) for e in run_rows(quality, b)]) == whole


@settings(max_examples=60, deadline=None)
@given(temperatures, pours, st.integers(0, 500))
def test_restart_from_a_snapshot_gives_the_same_events(temps, pour_rows, cut) -> None:
    rows = by_time(mixed(temps, pour_rows))
    expected = run_rows(core(HELD), rows)
    first = core(HELD)
    got = run_rows(first, rows[:cut])
    with_snapshot = Path(__import__("tempfile").mkdtemp()) / "state.npz"
    first.snapshot(with_snapshot)
    second = QualityCore.restore(with_snapshot, HELD)
    got += run_rows(second, rows[cut:])
    assert as_tuples(got) == as_tuples(expected)


def events_of(check: Check, events: list[QualityEvent]) -> list[tuple[str, int, float]]:
    return [(e.level, e.ts - T0, e.value) for e in events if e.check is check]


def test_warm_after_the_grace_period_and_ok_below_the_hysteresis() -> None:
    rows = [(0, 0, 8.0), (0, 1000, 8.0), (0, 2000, 8.0), (0, 10_000, 6.8), (0, 20_000, 6.4)]
    assert events_of(Check.WARM_BEER, run_temps(core(), rows)) == [
        (Level.WARNING, 2000, 8.0),
        (Level.OK, 20_000, 6.4),
    ]


def test_a_warming_trend_is_announced_with_its_crossing_time() -> None:
    # 0.01 °C a second = 36 °C an hour, from 5 °C: crosses 7 °C after 200 s.
    rows = [(0, s * 1000, 5.0 + 0.01 * s) for s in range(0, 160, 2)]
    [(level, at, crossing)] = events_of(Check.WARMING_TREND, run_temps(core(), rows))
    assert level is Level.WARNING
    assert crossing - T0 == pytest.approx(200_000, abs=1)  # forecast: 7 °C at 200 s
    assert crossing - (T0 + at) <= 60_000  # within the one-minute horizon


def test_a_stuck_probe_and_a_dead_one() -> None:
    quality = core()
    stuck = [(0, s * 1000, 4.25) for s in range(0, 30, 2)]  # tap a repeats itself for 30 s
    live = [(1, s * 1000, 4.0 + (s % 3) / 10) for s in range(0, 40, 2)]  # tap b reports to 40 s
    once = [(2, 0, 4.0)]  # tap c says one thing, then nothing
    events = run_temps(quality, sorted(stuck + live + once, key=lambda r: r[1]))
    # Ten identical readings over at least 12 s: the tenth, at 18 s.
    assert events_of(Check.STUCK_SENSOR, events)[0][:2] == (Level.WARNING, 18_000)
    dead = [(e.tap, e.ts - T0) for e in events if e.check is Check.DEAD_SENSOR]
    assert dead == [("c", 30_000)]  # silent 30 s while b reports; a stopped only 10 s before


def test_an_implausible_spike_is_flagged_and_does_not_make_beer_warm() -> None:
    rows = [(0, 0, 4.0), (0, 1000, 85.0), (0, 2000, 4.1), (0, 3000, 4.0), (0, 4000, 4.1)]
    events = run_temps(core(), rows)
    assert events_of(Check.IMPLAUSIBLE, events) == [
        (Level.WARNING, 1000, 85.0),
        (Level.OK, 4000, 4.1),
    ]
    assert events_of(Check.WARM_BEER, events) == []


def test_most_taps_of_a_venue_warming_together_is_a_cooler_failure() -> None:
    rows = sorted(
        # Two of three taps of v1 warm at 72 °C/h towards their 7 °C limit: a warming trend each.
        [(tap, s * 1000, 4.0 + 0.02 * s) for tap in (0, 1) for s in range(0, 140, 2)]
        + [(2, s * 1000, 4.0) for s in range(0, 140, 2)]
        + [(3, s * 1000, 4.0 + 0.02 * s) for s in range(0, 140, 2)],  # alone in venue v2
        key=lambda r: r[1],
    )
    cooler = [
        (e.venue, e.tap, e.level)
        for e in run_temps(core(), rows)
        if e.check is Check.COOLER_FAILURE
    ]
    assert cooler == [("v1", None, Level.WARNING)]


def test_keg_low_forecast_leak_and_foam() -> None:
    quality = core()
    quality.keg_changed("v1", "a", keg_l=1.8)
    run_temps(quality, [(0, 0, 4.0), (1, 0, 12.0)])  # tap b pours warm beer
    pours_a = [(0, 60_000 * k, 400.0, 4000) for k in range(1, 6)]  # 1.8 L keg, 2 L poured
    leak = [(2, 60_000, 50.0, 300_000)]  # tap c: 50 mL in five minutes
    foam = [(1, 60_000 * k + 1, 300.0, 3000) for k in range(1, 4)]
    events = run_pours(quality, sorted(pours_a + leak + foam, key=lambda r: r[1]))
    keg = [(e.level, e.ts - T0, e.detail) for e in events if e.check is Check.KEG_LOW]
    assert keg == [(Level.WARNING, 240_000, pytest.approx(200.0)),  # 11 % left
                   (Level.CRITICAL, 300_000, pytest.approx(-200.0))]  # fmt: skip
    forecast = next(e.value for e in events if e.check is Check.KEG_LOW)
    assert T0 + 240_000 < forecast < T0 + 240_000 + 3_600_000  # empty within the hour
    assert events_of(Check.LEAK, events) == [(Level.WARNING, 60_000, pytest.approx(50 / 300))]
    [(level, at, count)] = events_of(Check.FOAMY, events)
    assert (level, at, count) == (Level.WARNING, 180_001, 3.0)


def test_wrapper_refuses_unknown_tap_indexes() -> None:
    with pytest.raises(ValueError, match="tap_index"):
        QualityCore(FAST).temperatures(np.array([0], np.int32), np.array([T0]), np.array([4.0]))


def test_tap_table_grows_past_its_initial_capacity() -> None:
    quality = QualityCore(FAST)
    indexes = [quality.tap_index("v", f"t{i}") for i in range(3000)]
    assert indexes == list(range(3000))
    events = run_temps(quality, [(2999, 0, 8.0), (2999, 2000, 8.0)])
    assert events_of(Check.WARM_BEER, events) == [(Level.WARNING, 2000, 8.0)]


def test_flow_while_the_venue_is_closed() -> None:
    rows = [
        (0, 1000, 300.0, 3000, False),
        (0, 9000, 200.0, 2500, True),
        (0, 20_000, 300.0, 3000, False),
    ]
    assert events_of(Check.AFTER_HOURS, run_pours(core(), rows)) == [
        (Level.WARNING, 9000, 200.0),
        (Level.OK, 20_000, 300.0),
    ]


def test_line_cleaning_overdue_until_cleaned() -> None:
    quality = core()
    rows = [(0, s * 60_000, 4.0 + (s % 2) / 10) for s in range(10)]  # ten minutes of readings
    [(level, at, days)] = events_of(Check.LINE_CLEANING, run_temps(quality, rows))
    assert (level, at) == (Level.WARNING, 8 * 60_000)  # the first reading past 7.2 minutes
    assert days == pytest.approx(8 / 1440)
    cleaned = quality.line_cleaned("v1", "a", T0 + 10 * 60_000)
    assert cleaned is not None and cleaned.level is Level.OK
    assert events_of(Check.LINE_CLEANING, run_temps(quality, [(0, 11 * 60_000, 4.0)])) == []


def test_thresholds_come_from_the_beer_tap_and_venue() -> None:
    # Tap a pours a dubbel served up to 10 °C from 20 L kegs; v1 cleans its lines daily.
    directory = {
        "v1": VenueConfig(line_cleaning_days=0.001, taps={"a": TapConfig(20, 10.0)}),
    }
    quality = QualityCore(FAST, directory)
    for venue, tap in TAPS:
        quality.tap_index(venue, tap)
    rows = [(tap, s * 1000, 9.0) for s in range(0, 10) for tap in (0, 1)]
    warm = {e.tap for e in run_temps(quality, rows) if e.check is Check.WARM_BEER}
    assert warm == {"b"}  # 9 °C is warm for the lager on b, not for the dubbel on a
    params = quality.state["params"]
    assert params[0, K.P_KEG_ML] == 20_000 and params[1, K.P_KEG_ML] == FAST.keg_l * 1000
    assert params[0, K.P_CLEAN_MS] == params[1, K.P_CLEAN_MS] == pytest.approx(86_400)
    assert params[3, K.P_CLEAN_MS] == pytest.approx(FAST.line_cleaning_days * 86_400_000)


def test_warm_beer_escalates_to_critical_well_above_the_limit() -> None:
    rows = [(0, s * 10_000, 7.5 + s * 0.5) for s in range(8)] + [(0, 80_000, 6.0)]
    assert events_of(Check.WARM_BEER, run_temps(core(), rows)) == [
        (Level.WARNING, 10_000, 8.0),  # after the 2 s grace period
        (Level.CRITICAL, 60_000, 10.5),  # more than 3 °C above the 7 °C limit
        (Level.OK, 80_000, 6.0),
    ]


def test_checks_and_levels_are_numbered_as_the_kernels_number_them() -> None:
    """The kernels emit integers; `CHECKS[i]` and `LEVELS[i]` turn them into names."""
    assert len(Check) == K.N_CHECKS
    assert [getattr(K, check.name) for check in Check] == list(range(K.N_CHECKS))
    assert [getattr(K, level.name) for level in Level] == [K.OK, K.WARNING, K.CRITICAL]


def test_a_pour_flushing_a_warm_line_is_plausible_a_spike_is_not() -> None:
    # 24.5 °C in an idle warm line, then a pour brings 3.6 °C beer from the cooler in 30 s.
    flush = [(0, 0, 24.5), (0, 30_000, 3.6), (0, 60_000, 3.7)]
    assert events_of(Check.IMPLAUSIBLE, run_temps(core(), flush)) == []
    # A rise that fast, or a fall below the cold beer (2 °C less 2), is a glitch.
    rise = [(0, 0, 4.0), (0, 30_000, 24.5)]
    assert events_of(Check.IMPLAUSIBLE, run_temps(core(), rise)) == [(Level.WARNING, 30_000, 24.5)]
    fall = [(0, 0, 24.5), (0, 30_000, -1.0)]
    assert events_of(Check.IMPLAUSIBLE, run_temps(core(), fall)) == [(Level.WARNING, 30_000, -1.0)]


def test_a_leak_clears_when_its_flow_stops_being_reported() -> None:
    quality = core()
    leak = [(K.POUR, 0, 20_000 * k, 10.0, 20_000, False) for k in range(1, 4)]  # 0.5 mL/s
    probe = [(K.TEMPERATURE, 0, 5_000 * k, 4.0 + (k % 2) / 10, 0, False) for k in range(40)]
    events = run_rows(quality, by_time(leak + probe))
    # Raised by the first piece; over once no flow came for 30 s (`leak_clear_min`).
    assert events_of(Check.LEAK, events) == [
        (Level.WARNING, 20_000, pytest.approx(0.5)),
        (Level.OK, 90_000, 0.0),
    ]


def test_a_raised_check_clears_only_after_the_hold_so_it_does_not_flap() -> None:
    # Warm, then dipping below the 6.5 °C clear line every 6 s, then cold for good from 22 s.
    rows = [(0, 0, 7.2), (0, 2000, 7.2)]
    rows += [(0, 4000 + 2000 * k, 6.4 if k % 3 == 0 else 7.2) for k in range(9)]
    rows += [(0, 22_000 + 2000 * k, 5.0) for k in range(5)]
    held = events_of(Check.WARM_BEER, run_temps(core(HELD), rows))
    assert held == [(Level.WARNING, 2000, 7.2), (Level.OK, 28_000, 5.0)]  # after a 6 s hold
    flapping = events_of(Check.WARM_BEER, run_temps(core(FAST), rows))
    assert len(flapping) >= 6  # without a hold: ok at each dip, warm 2 s later, ...


def test_a_pour_is_judged_against_the_temperature_at_its_own_time() -> None:
    """Three pours of cold beer, then the beer warms past 9 °C: the early pours are not foamy
    (they once were in a batch that ended warm: judged against its last temperature)."""
    warming = [4.0 + max(0, k - 5) for k in range(16)]  # 1 °C per 10 s from 50 s: 13 °C at 140 s
    temps = [(K.TEMPERATURE, 0, 10_000 * k, c, 0, False) for k, c in enumerate(warming)]
    early = [(K.POUR, 0, 20_000 + 20_000 * k, 300.0, 3000, False) for k in range(3)]
    rows = by_time(temps + early)
    assert events_of(Check.FOAMY, run_rows(core(), rows)) == []
    late = [(K.POUR, 0, 141_000 + 1000 * k, 300.0, 3000, False) for k in range(3)]
    events = run_rows(core(), by_time(temps + late))
    assert [e[:2] for e in events_of(Check.FOAMY, events)] == [(Level.WARNING, 143_000)]


def test_a_keg_change_recorded_ahead_waits_for_the_tap_to_reach_it() -> None:
    quality = core()  # 2 L kegs
    pours = [(0, 60_000 * k, 500.0, 5000) for k in range(1, 5)]  # 2 L: empty at 4 min
    keg = [(e.level, e.ts - T0) for e in run_pours(quality, pours) if e.check is Check.KEG_LOW]
    assert keg[-1] == (Level.CRITICAL, 240_000)
    # Recorded at 5 min, before ingest has seen anything after 4 min: it waits.
    assert quality.keg_changed("v1", "a", 2.0, at_ms=T0 + 300_000) == []
    later = run_pours(quality, [(0, 290_000, 100.0, 1000), (0, 360_000, 500.0, 5000)])
    after = [(e.level, e.ts - T0, e.detail) for e in later if e.check is Check.KEG_LOW]
    # The 100 mL pour at 4:50 went from the old keg; the new one counts from 5:00.
    assert after == [(Level.OK, 300_000, 2000.0)]
    assert quality.state["keg_used_ml"][0] == 500.0


def test_a_keg_change_nobody_recorded_is_inferred_from_pours_past_empty() -> None:
    quality = core()  # 2 L kegs; inferred after 20 % of a keg (400 mL) past empty
    pours = [(0, 60_000 * k, 500.0, 5000) for k in range(1, 8)]  # 3.5 L from a 2 L keg
    events = run_pours(quality, pours)
    keg = [(e.level, e.ts - T0) for e in events if e.check is Check.KEG_LOW]
    assert keg[-2:] == [(Level.CRITICAL, 240_000), (Level.OK, 300_000)]
    [inferred] = quality.take_inferred()
    assert (inferred.venue, inferred.tap, inferred.at_ms - T0, inferred.keg_l) == (
        "v1", "a", 295_000, 2.0,  # the start of the first pour past empty
    )  # fmt: skip
    assert quality.state["keg_used_ml"][0] == 1500.0  # the pours since, of the new keg
    assert quality.take_inferred() == []
    ref = reference()
    ref.pours((t, T0 + ts, ml, d, False) for t, ts, ml, d in pours)
    assert ref.inferred == [(0, T0 + 295_000)]


def test_a_keg_change_recorded_late_counts_the_pours_since_to_the_new_keg() -> None:
    quality = core()  # 2 L kegs
    # The 2 L keg is empty at 4:00; a new one went on at 4:30, then 300 mL were poured.
    pours = [(0, 60_000 * k, 500.0, 5000) for k in range(1, 5)] + [(0, 300_000, 300.0, 3000)]
    run_pours(quality, pours)
    events = quality.keg_changed("v1", "a", 2.0, at_ms=T0 + 270_000)  # recorded at 5:30
    # Cleared as of the tap's newest reading (its events never go back in time).
    assert [(e.check, e.level, e.ts - T0) for e in events] == [(Check.KEG_LOW, Level.OK, 300_000)]
    assert quality.state["keg_used_ml"][0] == 300.0  # the pour since counts to the new keg
    ref = reference()
    ref.pours((t, T0 + ts, ml, d, False) for t, ts, ml, d in pours)
    ref.readings([(K.KEG, 0, T0 + 270_000, 2000.0, 0, False)])
    assert ref.keg_used[0] == 300.0
