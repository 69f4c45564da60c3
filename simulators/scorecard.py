"""The field tester's scorecard: the quality events Tapsense raised, held against what really
happened in the simulated world (its ground truth). Pure: events in, figures out.

Per check it counts the faults injected that the check should see, how many it detected and
how soon (detection delay: from the fault's start; for a keg, from the moment it ran dry, so a
forecast ahead of it is negative), the alarms nothing in the world explains (false alarms, per
venue-week), and flaps (raised again soon after it cleared).

What explains an alarm, besides the fault a check is for: a failing cooler warms every tap of
its venue (warm beer, warming trend, foamy pours) until it has recovered; a warming line does
the same to its tap; a leak at night is flow after hours; a keg warning is due while the keg
really is low (under a third left, by the true pours) or runs dry within the forecast horizon.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from simulators import scenario as sc
from simulators.fleet import venue_specs
from simulators.world import TruthEvent
from timeseries.events import Check, Level, QualityEvent

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
# A check raised again this soon after it cleared is a flap.
FLAP_MS = 30 * MINUTE_MS
# A fault is detected by an alarm from its start to this long after it ends (a cooler's beer
# stays warm for a while after its repair).
AFTER_FAULT_MS = 2 * HOUR_MS
KEG_LOW_TRUE_SHARE = 1 / 3
# A keg change nobody recorded is inferred after a fifth of a keg poured past the empty one
# (`quality.keg_infer_share`); it is scored once this share of the new keg was poured.
KEG_INFERRED_AFTER_SHARE = 0.25
KEG_FORECAST_MS = 3 * HOUR_MS

# The checks each kind of fault should raise (the first is the one it is scored on), and the
# other checks it explains on the same tap or venue.
FAULTS: dict[str, tuple[tuple[Check, ...], tuple[Check, ...]]] = {
    "cooler_failure": (
        (Check.COOLER_FAILURE,),
        (Check.WARM_BEER, Check.WARMING_TREND, Check.FOAMY, Check.IMPLAUSIBLE),
    ),
    "warming_line": ((Check.WARMING_TREND, Check.WARM_BEER), (Check.FOAMY, Check.IMPLAUSIBLE)),
    "stuck": ((Check.STUCK_SENSOR,), ()),
    "silent": ((Check.DEAD_SENSOR,), ()),
    "spikes": ((Check.IMPLAUSIBLE,), ()),
    "drift": ((Check.WARMING_TREND, Check.WARM_BEER), (Check.FOAMY,)),
    "leak": ((Check.LEAK,), (Check.AFTER_HOURS,)),
    "keg_empty": ((Check.KEG_LOW,), ()),
}


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    venue: str
    tap: str | None  # None: the whole venue
    start_ms: int
    end_ms: int

    def covers(self, venue: str, tap: str | None, ts: int, slack_ms: int) -> bool:
        where = venue == self.venue and (self.tap is None or tap in (None, self.tap))
        return where and self.start_ms <= ts <= self.end_ms + slack_ms


@dataclass
class CheckScore:
    injected: int = 0
    detected: int = 0
    delays_min: list[float] = field(default_factory=list)
    raised: int = 0
    false_alarms: int = 0
    flaps: int = 0

    @property
    def missed(self) -> int:
        return self.injected - self.detected


@dataclass
class Scorecard:
    venue_weeks: float
    checks: dict[Check, CheckScore]
    keg_changes: int = 0  # kegs changed in the world after running low
    keg_cleared: int = 0  # of those, the keg alarm cleared before the next ran low
    kegs_inferred: int = 0  # keg alarms cleared for changes nobody recorded

    def false_alarms_per_venue_week(self) -> float:
        total = sum(score.false_alarms for score in self.checks.values())
        return total / self.venue_weeks if self.venue_weeks else 0.0

    def flaps(self) -> int:
        return sum(score.flaps for score in self.checks.values())

    def __str__(self) -> str:
        lines = [
            f"{'check':<22} {'faults':>6} {'found':>6} {'missed':>6} {'delay median':>13} "
            f"{'max':>8} {'alarms':>6} {'false':>6} {'flaps':>6}"
        ]
        for check, s in self.checks.items():
            delay = (
                (f"{statistics.median(s.delays_min):.1f} min", f"{max(s.delays_min):.1f} min")
                if s.delays_min
                else ("-", "-")
            )
            lines.append(
                f"{check.value:<22} {s.injected:>6} {s.detected:>6} {s.missed:>6} "
                f"{delay[0]:>13} {delay[1]:>8} {s.raised:>6} {s.false_alarms:>6} {s.flaps:>6}"
            )
        lines.append(
            f"kegs changed after running low: {self.keg_changes}, keg alarm cleared after "
            f"{self.keg_cleared} ({self.kegs_inferred} of them inferred: nobody recorded it)"
        )
        lines.append(
            f"false alarms: {self.false_alarms_per_venue_week():.2f} per venue-week over "
            f"{self.venue_weeks:.1f} venue-weeks; flaps: {self.flaps()}"
        )
        return "\n".join(lines)


def faults(truth: Iterable[TruthEvent], end_ms: int) -> list[Fault]:
    """The faults the world injected, each with the window it lasted."""
    found = []
    for event in truth:
        kind = str(event.detail.get("fault", event.kind))
        if kind not in FAULTS:
            continue
        duration = event.detail.get("duration")
        end = event.ts_ms + sc.seconds(str(duration)) * 1000 if duration else end_ms
        if kind == "keg_empty":
            end = event.ts_ms
        found.append(Fault(kind, event.venue, event.tap, event.ts_ms, end))
    return found


def score(
    truth: list[TruthEvent], events: list[QualityEvent], *, venues: int, start_ms: int,
    end_ms: int, keg_l: Mapping[tuple[str, str], float],
) -> Scorecard:  # fmt: skip
    """`keg_l`: each tap's keg size in litres, to know how full its keg truly was."""
    injected = faults(truth, end_ms)
    card = Scorecard((end_ms - start_ms) / (7 * 24 * HOUR_MS) * venues, {})
    for check in Check:
        card.checks[check] = CheckScore()
    events = sorted(events, key=lambda e: e.ts)
    raises = _raises(events, card)
    fill = _TrueFill(truth, keg_l)

    for fault in injected:
        wanted, _ = FAULTS[fault.kind]
        score_of = card.checks[wanted[0]]
        score_of.injected += 1
        slack = 0 if fault.kind == "keg_empty" else AFTER_FAULT_MS
        since = fill.keg_since(fault.venue, fault.tap, fault.start_ms) if fault.tap else 0
        hits = [
            e
            for e in raises
            if e.check in wanted
            and (e.venue, e.tap if fault.tap else None) == (fault.venue, fault.tap)
            and (since < e.ts <= fault.start_ms if fault.kind == "keg_empty"
                 else fault.start_ms <= e.ts <= fault.end_ms + slack)
        ]  # fmt: skip
        if hits:
            score_of.detected += 1
            score_of.delays_min.append((hits[0].ts - fault.start_ms) / MINUTE_MS)

    for event in raises:
        if not _explained(event, injected, fill):
            card.checks[event.check].false_alarms += 1

    _score_keg_changes(card, truth, events)
    return card


def _raises(events: list[QualityEvent], card: Scorecard) -> list[QualityEvent]:
    """The events that raised a check (from ok), counting flaps on the way."""
    level: dict[tuple[str, str | None, Check], Level] = defaultdict(lambda: Level.OK)
    cleared_at: dict[tuple[str, str | None, Check], int] = {}
    raises = []
    for event in events:
        key = (event.venue, event.tap, event.check)
        if event.level is Level.OK:
            if level[key] is not Level.OK:
                cleared_at[key] = event.ts
        elif level[key] is Level.OK:
            raises.append(event)
            card.checks[event.check].raised += 1
            if key in cleared_at and event.ts - cleared_at[key] <= FLAP_MS:
                card.checks[event.check].flaps += 1
        level[key] = event.level
    return raises


def _explained(event: QualityEvent, injected: list[Fault], fill: _TrueFill) -> bool:
    if event.check is Check.KEG_LOW:
        assert event.tap is not None
        return fill.low(event.venue, event.tap, event.ts)
    for fault in injected:
        wanted, also = FAULTS[fault.kind]
        if event.check in wanted + also and fault.covers(
            event.venue, event.tap, event.ts, AFTER_FAULT_MS
        ):
            return True
    return False


def _score_keg_changes(
    card: Scorecard, truth: list[TruthEvent], events: list[QualityEvent]
) -> None:
    """Each keg change in the world after a keg ran low: did the keg alarm clear after it?"""
    keg_events = [e for e in events if e.check is Check.KEG_LOW]
    changes = sorted((e for e in truth if e.kind == "keg_change"), key=lambda e: e.ts_ms)
    for change in changes:
        assert change.tap is not None
        mine = [e for e in keg_events if (e.venue, e.tap) == (change.venue, change.tap)]
        before = [e for e in mine if e.ts < change.ts_ms]
        if not before or before[-1].level is Level.OK:
            continue  # the alarm was not raised when the keg went on (nothing to clear)
        later = [
            e
            for e in truth
            if e.kind == "keg_empty" and (e.venue, e.tap) == (change.venue, change.tap)
            and e.ts_ms > change.ts_ms
        ]  # fmt: skip
        until = later[0].ts_ms if later else 2**62
        if change.detail.get("recorded") == "false":
            poured = sum(float(e.detail["ml"]) for e in truth if e.kind == "pour"
                         and (e.venue, e.tap) == (change.venue, change.tap)
                         and change.ts_ms <= e.ts_ms < until)  # fmt: skip
            if poured < KEG_INFERRED_AFTER_SHARE * float(change.detail["keg_l"]) * 1000:
                continue  # too little poured since for anyone to tell
        card.keg_changes += 1
        if any(e.level is Level.OK and change.ts_ms - MINUTE_MS <= e.ts < until for e in mine):
            card.keg_cleared += 1
            card.kegs_inferred += change.detail.get("recorded") == "false"


class _TrueFill:
    """How full each tap's keg really was, from the world's pours and keg changes."""

    def __init__(self, truth: list[TruthEvent], keg_l: Mapping[tuple[str, str], float]) -> None:
        self._keg_l = keg_l
        self._timeline: dict[tuple[str, str], list[tuple[int, float, float]]] = defaultdict(list)
        self._empties: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._changes: dict[tuple[str, str], list[int]] = defaultdict(list)
        left: dict[tuple[str, str], float] = {}
        size: dict[tuple[str, str], float] = {}
        for event in sorted(truth, key=lambda e: e.ts_ms):
            if event.tap is None:
                continue
            key = (event.venue, event.tap)
            if key not in left:
                size[key] = keg_l.get(key, 50.0) * 1000
                left[key] = size[key]
            if event.kind == "pour":
                left[key] -= float(event.detail["ml"])
            elif event.kind == "keg_change":
                size[key] = float(event.detail["keg_l"]) * 1000
                left[key] = size[key]
                self._changes[key].append(event.ts_ms)
            elif event.kind == "keg_empty":
                self._empties[key].append(event.ts_ms)
            self._timeline[key].append((event.ts_ms, left[key], size[key]))

    def low(self, venue: str, tap: str, ts: int) -> bool:
        key = (venue, tap)
        if any(ts <= empty <= ts + KEG_FORECAST_MS for empty in self._empties[key]):
            return True
        before = [(at, left, size) for at, left, size in self._timeline[key] if at <= ts]
        if not before:
            return False
        _, left, size = before[-1]
        return left < KEG_LOW_TRUE_SHARE * size

    def keg_since(self, venue: str, tap: str, ts: int) -> int:
        """When the keg on the tap at `ts` went on (0: the first one)."""
        return max((at for at in self._changes[(venue, tap)] if at < ts), default=0)


def keg_sizes(scenario: sc.Scenario) -> dict[tuple[str, str], float]:
    """Each tap's keg size in litres, as the scenario gives it."""
    return {
        (spec.id, tap.id): tap.keg_l
        for spec in venue_specs(scenario)
        for tap in sc.tap_specs(scenario, spec)
    }
