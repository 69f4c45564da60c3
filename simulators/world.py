"""The simulated world: venues with coolers, beer lines, kegs, guests, sensors and faults.

Pure simulation, no I/O: a `SimVenue` advances in steps of simulated time and its `SimTap`s
answer the edge agent's driver calls (`edge.drivers.TapDriver`) as real probes and flow meters
would, faults included. Everything random comes from generators seeded by the scenario, so the
same scenario and seed give the same world. What really happened (true pours, keg empties,
fault windows) is recorded as ground truth beside what the sensors reported.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec

from edge.drivers import TapDriver
from registry.hours import is_open
from simulators import scenario as sc

# Share of the busiest hour's demand, by local hour of day (a Dutch café: evenings).
HOUR_CURVE = (
    0.35, 0.2, 0.05, 0, 0, 0, 0, 0, 0, 0, 0.05, 0.1,
    0.2, 0.25, 0.25, 0.3, 0.45, 0.7, 0.85, 0.9, 1.0, 1.0, 0.85, 0.6,
)  # fmt: skip
WEEKDAY_FACTOR = (0.55, 0.6, 0.7, 0.85, 1.0, 1.0, 0.75)  # Monday first
MONTH_FACTOR = (0.85, 0.85, 0.9, 0.95, 1.05, 1.15, 1.2, 1.2, 1.05, 0.95, 0.9, 1.0)

COOLER_FAIL_TAU_S = 3 * 3600.0  # a failed cooler drifts to room temperature over hours
COOLER_RECOVER_TAU_S = 1800.0
LINE_TAU_S = 1800.0  # an idle line settles in half an hour
LINE_IDLE_SHARE = 0.12  # an idle line sits this far from the cooler towards room temperature
POUR_ML = (450.0, 60.0)  # mean and spread of a pour
FLOW_ML_PER_S = (100.0, 140.0)
FOAM_MARGIN_C = 2.0  # beer this far above its style's range foams: a share of the pour is waste
KEG_CHANGE_DELAY_S = (600, 1800)
FLOW_POLL_MS = 250  # the agent polls a flowing meter this often (pulse counters interrupt)
SPIKE_VALUES = (85.0, -40.0)  # what a glitching 1-Wire probe reads


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """Something that really happened, for tests to compare with what Tapsense concluded."""

    ts_ms: int
    venue: str
    tap: str | None
    kind: str
    detail: dict[str, float | str] = field(default_factory=dict)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))


@dataclass(slots=True)
class Flow:
    """Beer moving through a tap's meter: a pour, or a leak."""

    start_ms: int
    end_ms: int
    ml_per_ms: float


class SimTap(TapDriver):
    """One tap: its line temperature, keg, flows, probe and meter, as its agent sees them."""

    def __init__(self, venue: SimVenue, spec: sc.Tap, beer: sc.Beer, seed: int) -> None:
        self.tap = spec.id
        self.spec = spec
        self.beer = beer
        self.venue = venue
        self.rng = random.Random(seed)
        # Its own stream: whether staff record a keg change leaves the world as it was.
        self._staff_rng = random.Random(seed ^ 0x5EED)
        self._coupon_rng = random.Random(seed ^ 0xC0FFEE)
        self.line_c = venue.cooler_c
        self.keg_left_ml = spec.keg_l * 1000
        self.keg_empty_since: int | None = None
        self.flows: list[Flow] = []
        self._ticked_to_ms: int | None = None
        self._tick_carry = 0.0
        self._stuck_at: float | None = None

    # --- the driver interface: what the agent reads ------------------------------------------

    def temperature_c(self, now_ms: int) -> float | None:
        world = self.venue
        faults = world.faults(self.tap, world.now_ms)
        if "silent" in faults or self.rng.random() < world.sensors.dropout:
            return None
        if "stuck" in faults:
            if self._stuck_at is None:
                self._stuck_at = round(self.line_c, 3)
            return self._stuck_at
        self._stuck_at = None
        value = self.line_c + self.rng.gauss(0.0, world.sensors.noise_c)
        drift = faults.get("drift")
        if drift is not None:
            value += drift[0].magnitude * (world.now_ms - ms(drift[0].at)) / 3_600_000
        spike_share = world.sensors.spikes + sum(f.magnitude for f in faults.get("spikes", []))
        if spike_share and self.rng.random() < spike_share:
            value = self.rng.choice(SPIKE_VALUES)
        return round(min(max(value, -55.0), 125.0), 3)

    def ticks(self, now_ms: int) -> int:
        world_now = self.venue.now_ms
        since = self._ticked_to_ms if self._ticked_to_ms is not None else world_now
        self._ticked_to_ms = world_now
        ml = 0.0
        for flow in self.flows:
            overlap = min(flow.end_ms, world_now) - max(flow.start_ms, since)
            if overlap > 0:
                ml += overlap * flow.ml_per_ms
        self.flows = [f for f in self.flows if f.end_ms > world_now]
        self._tick_carry += ml / 1000.0 * self.spec.k_factor
        whole = int(self._tick_carry)
        self._tick_carry -= whole
        return whole

    # --- physics -----------------------------------------------------------------------------

    def advance(self, t0: int, t1: int, pours_per_s: float) -> None:
        world = self.venue
        dt_s = (t1 - t0) / 1000
        warming = world.warming_factor(self.tap, t0)
        idle_target = (
            world.cooler_c + (world.ambient_c - world.cooler_c) * LINE_IDLE_SHARE * warming
        )
        self.line_c += (idle_target - self.line_c) * (1 - math.exp(-dt_s * warming / LINE_TAU_S))
        self._refill_keg(t0)
        expected = pours_per_s * dt_s * self.beer.popularity
        for _ in range(_poisson(self.rng, expected)):
            self._pour(self.rng.randint(t0, t1 - 1))
        uplift = world.coupon_uplift(self.beer.name, t0)
        if uplift > 0:  # a stream of its own: without a campaign the world stays as it was
            for _ in range(_poisson(self._coupon_rng, expected * uplift)):
                self._pour(self._coupon_rng.randint(t0, t1 - 1), coupon=True)
        for leak in world.leaks(self.tap, t0, t1):
            start, end = max(ms(leak.at), t0), min(world.event_end(leak), t1)
            if end > start:
                self.flows.append(Flow(start, end, leak.ml_per_min / 60_000))
                self.keg_left_ml = max(
                    0.0, self.keg_left_ml - (end - start) * leak.ml_per_min / 60_000
                )

    def _pour(self, start: int, *, coupon: bool = False) -> None:
        if self.keg_left_ml <= 0:
            return
        rng = self._coupon_rng if coupon else self.rng  # coupons leave the others' draws be
        wanted = min(max(rng.gauss(*POUR_ML), 150.0), 650.0)
        ml = min(wanted, self.keg_left_ml)
        rate = rng.uniform(*FLOW_ML_PER_S) / 1000
        self.flows.append(Flow(start, start + max(1, round(ml / rate)), rate))
        self.keg_left_ml -= ml
        foamy = self.line_c > self.beer.serving_max_c + FOAM_MARGIN_C
        self.venue.record(
            TruthEvent(
                start,
                self.venue.id,
                self.tap,
                "pour",
                {"ml": round(ml, 1), "foamy": str(foamy).lower(), "coupon": str(coupon).lower()},
            )
        )
        self.line_c = self.venue.cooler_c  # fresh beer from the cooler fills the line
        if self.keg_left_ml <= 0:
            self.keg_empty_since = start
            self.venue.record(TruthEvent(start, self.venue.id, self.tap, "keg_empty"))

    def _refill_keg(self, now: int) -> None:
        if self.keg_empty_since is None:
            return
        delay_ms = self.rng.randint(*KEG_CHANGE_DELAY_S) * 1000
        if now - self.keg_empty_since >= delay_ms and self.venue.is_open(now):
            self.keg_left_ml = self.spec.keg_l * 1000
            self.keg_empty_since = None
            forgotten = self._staff_rng.random() < self.venue.staff.forget_keg_changes
            detail: dict[str, float | str] = {
                "keg_l": self.spec.keg_l,
                "recorded": str(not forgotten).lower(),
            }
            self.venue.record(TruthEvent(now, self.venue.id, self.tap, "keg_change", detail))


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class SimVenue:
    """A venue's cooler, taps and guests under the scenario's events."""

    def __init__(
        self,
        spec: sc.Venue,
        scenario: sc.Scenario,
        index: int,
        record: Callable[[TruthEvent], None],
    ) -> None:
        self.id = spec.id
        self.spec = spec
        self.sensors = scenario.sensors
        self.staff = scenario.staff
        self.tz = ZoneInfo(spec.timezone)
        self.ambient_c = spec.ambient_c
        self.cooler_c = spec.cooler_set_point_c
        self.now_ms = ms(scenario.start)
        self.opens_ms = ms(spec.opens) if spec.opens is not None else None
        self.record = record
        self._end_ms = ms(scenario.start) + sc.seconds(scenario.duration) * 1000
        self._events = [e for e in scenario.events if getattr(e, "venue", spec.id) == spec.id]
        self._festivals = [
            e
            for e in scenario.events
            if isinstance(e, sc.Festival)
            and _distance_km(e.lat, e.lon, spec.lat, spec.lon) <= e.radius_km
        ]
        self._campaigns = [
            e
            for e in scenario.events
            if isinstance(e, sc.CouponCampaign)
            and _distance_km(e.lat, e.lon, spec.lat, spec.lon) <= e.radius_km
        ]
        beers = {b.name: b for b in scenario.beers}
        base_seed = scenario.seed * 1_000_003 + index * 10_007
        self.taps = [
            SimTap(self, tap, beers[tap.beer], base_seed + t)
            for t, tap in enumerate(sc.tap_specs(scenario, spec))
        ]
        self._announced: set[int] = set()

    def event_end(self, event: sc.Event) -> int:
        return ms(event.at) + sc.seconds(event.duration) * 1000 if event.duration else self._end_ms

    def _active(self, event: sc.Event, now: int) -> bool:
        return ms(event.at) <= now < self.event_end(event)

    def faults(self, tap: str, now: int) -> dict[str, list[sc.SensorFault]]:
        found: dict[str, list[sc.SensorFault]] = {}
        for e in self._events:
            if isinstance(e, sc.SensorFault) and e.tap == tap and self._active(e, now):
                found.setdefault(e.fault, []).append(e)
        return found

    def warming_factor(self, tap: str, now: int) -> float:
        factor = 1.0
        for e in self._events:
            if isinstance(e, sc.WarmingLine) and e.tap == tap and self._active(e, now):
                factor *= e.factor
        return factor

    def leaks(self, tap: str, t0: int, t1: int) -> list[sc.Leak]:
        return [
            e
            for e in self._events
            if isinstance(e, sc.Leak) and e.tap == tap and ms(e.at) < t1 and self.event_end(e) > t0
        ]

    def coupon_uplift(self, beer: str, now: int) -> float:
        """The extra share of `beer`'s pours that redeemed coupons bring now (0: none)."""
        return sum(e.uplift for e in self._campaigns if e.beer == beer and self._active(e, now))

    def clock_skew_ms(self, now: int) -> int:
        return sum(
            round(e.seconds * 1000)
            for e in self._events
            if isinstance(e, sc.ClockSkew) and self._active(e, now)
        )

    def offline(self, now: int) -> bool:
        return any(isinstance(e, sc.Offline) and self._active(e, now) for e in self._events)

    def is_open(self, now: int) -> bool:
        return is_open(msgspec.structs.asdict(self.spec.hours), self.tz, now)

    def pours_per_tap_s(self, now: int) -> float:
        if not self.is_open(now):
            return 0.0
        local = datetime.fromtimestamp(now / 1000, UTC).astimezone(self.tz)
        rate = (
            self.spec.pours_per_tap_hour
            * HOUR_CURVE[local.hour]
            * WEEKDAY_FACTOR[local.weekday()]
            * MONTH_FACTOR[local.month - 1]
        )
        for festival in self._festivals:
            if self._active(festival, now):
                rate *= festival.boost
        return rate / 3600

    def _announce(self, now: int) -> None:
        for i, e in enumerate(self._events):
            if i not in self._announced and ms(e.at) <= now:
                self._announced.add(i)
                fields = msgspec.structs.asdict(e)
                detail = {k: v for k, v in fields.items() if isinstance(v, (int, float, str))}
                tap = fields.get("tap")
                kind = str(type(e).__struct_config__.tag)
                self.record(
                    TruthEvent(
                        ms(e.at), self.id, tap if isinstance(tap, str) else None, kind, detail
                    )
                )

    def advance(self, t1: int) -> None:
        """Move the venue from `now_ms` to `t1`."""
        t0 = self.now_ms
        dt_s = (t1 - t0) / 1000
        self._announce(t1)
        failed = any(isinstance(e, sc.CoolerFailure) and self._active(e, t0) for e in self._events)
        target = self.ambient_c if failed else self.spec.cooler_set_point_c
        tau = COOLER_FAIL_TAU_S if failed else COOLER_RECOVER_TAU_S
        self.cooler_c += (target - self.cooler_c) * (1 - math.exp(-dt_s / tau))
        rate = self.pours_per_tap_s(t0)
        for tap in self.taps:
            tap.advance(t0, t1, rate)
        self.now_ms = t1
