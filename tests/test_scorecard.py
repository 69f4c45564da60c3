"""The field tester's scorecard on every ready scenario, through the quality core: every fault
the documented rules can see is detected, keg alarms clear after every keg change (recorded or
not), under one false alarm per venue-week, and nothing flaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators import scenario as sc
from simulators.scorecard import keg_sizes, score
from simulators.world import ms
from tests.test_quality_scenarios import SCENARIOS, check, simulate
from timeseries.events import Check, Level, QualityEvent

READY = ["normal-week", "cooler-failure", "festival", "flaky-network"]


@pytest.mark.parametrize("name", READY)
def test_the_scorecard_of_a_ready_scenario(name: str, tmp_path: Path) -> None:
    scenario = sc.load(SCENARIOS / f"{name}.yaml")
    run = simulate(scenario, tmp_path)
    start = ms(scenario.start)
    card = score(
        run.truth.events, check(run), venues=len(run.is_open), start_ms=start,
        end_ms=start + sc.seconds(scenario.duration) * 1000, keg_l=keg_sizes(scenario),
    )  # fmt: skip
    print(f"\n{name}\n{card}")
    for check_name, figures in card.checks.items():
        assert figures.missed == 0, f"{check_name}: {figures}"
    assert card.keg_changes > 0 and card.keg_cleared == card.keg_changes
    assert card.kegs_inferred > 0  # staff forget one in four
    assert card.false_alarms_per_venue_week() < 1, str(card)
    assert card.flaps() == 0, str(card)


def event(check: Check, level: Level, ts: int, tap: str | None = "t1") -> QualityEvent:
    return QualityEvent("v", tap, check, level, ts, 0.0, 0.0)


def test_the_scorecard_counts_misses_false_alarms_and_flaps() -> None:
    from simulators.world import TruthEvent

    truth = [
        TruthEvent(60_000, "v", "t1", "sensor_fault", {"fault": "stuck", "duration": "10m"}),
        TruthEvent(60_000, "v", "t2", "leak", {"duration": "10m"}),
    ]
    events = [
        event(Check.STUCK_SENSOR, Level.WARNING, 180_000),  # found after 2 minutes
        event(Check.WARM_BEER, Level.WARNING, 600_000),  # nothing explains it
        event(Check.WARM_BEER, Level.OK, 700_000),
        event(Check.WARM_BEER, Level.WARNING, 800_000),  # again 100 s later: a flap
    ]
    card = score(truth, events, venues=1, start_ms=0, end_ms=7 * 86_400_000, keg_l={})
    stuck, leak, warm = (card.checks[c] for c in (Check.STUCK_SENSOR, Check.LEAK, Check.WARM_BEER))
    assert (stuck.injected, stuck.detected, stuck.delays_min) == (1, 1, [2.0])
    assert (leak.injected, leak.missed) == (1, 1)
    assert (warm.raised, warm.false_alarms, warm.flaps) == (2, 2, 1)
    assert card.false_alarms_per_venue_week() == 2.0
