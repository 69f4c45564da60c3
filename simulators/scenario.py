"""Scenario files: a fleet of venues and a timeline of events, in YAML, validated with lines.

A scenario is the one input of a simulation run; the same scenario and seed give the same run.
`docs/scenarios.md` is the format's guide; `tapsense simulate --help` shows it by example. A
scenario may `extend` another file (a base fleet) and add events or override top-level keys.

Errors name the file, the line and the field: `week.yaml line 14, events[2].at: Expected
datetime, got str`. The decoding is msgspec's; the line comes from PyYAML's node marks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from edge.wire import ID_PATTERN
from registry.hours import HOURS_PATTERN

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
Positive = Annotated[float, msgspec.Meta(gt=0.0)]
# "90s", "15m", "6h", "7d", or a combination ("1h30m").
DURATION_PATTERN = r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
Duration = Annotated[str, msgspec.Meta(pattern=DURATION_PATTERN, min_length=2)]
# A moment in a scenario says its time zone: 18:00 in Utrecht is not 18:00 UTC.
Moment = Annotated[datetime, msgspec.Meta(tz=True)]
Hours = Annotated[str, msgspec.Meta(pattern=HOURS_PATTERN)]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def seconds(duration: str) -> int:
    """`1h30m` -> 5400."""
    return sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([dhms])", duration))


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with where and why."""


class _Spec(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Beer(_Spec, frozen=True):
    name: str
    style: str = "lager"
    serving_min_c: float = 2.0
    serving_max_c: float = 7.0
    popularity: Positive = 1.0

    def __post_init__(self) -> None:
        if self.serving_min_c >= self.serving_max_c:
            raise ValueError("serving_min_c must be below serving_max_c")


class Tap(_Spec, frozen=True):
    id: Id
    beer: str = "house lager"
    keg_l: Positive = 50.0
    k_factor: Positive = 5600.0  # flow-meter ticks per litre


class OpeningHours(_Spec, frozen=True):
    mon: Hours = "16:00-24:00"
    tue: Hours = "16:00-24:00"
    wed: Hours = "16:00-24:00"
    thu: Hours = "16:00-24:00"
    fri: Hours = "15:00-24:00"
    sat: Hours = "13:00-24:00"
    sun: Hours = "13:00-22:00"


class Venue(_Spec, frozen=True):
    id: Id
    city: str = "Utrecht"
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] = 52.09
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] = 5.12
    timezone: str = "Europe/Amsterdam"
    taps: list[Tap] | Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    hours: OpeningHours = OpeningHours()
    pours_per_tap_hour: NonNegative = 10.0  # at the busiest hour of an ordinary Friday
    cooler_set_point_c: float = 3.5
    ambient_c: float = 21.0
    # A venue that opens during the scenario: its sensors send nothing before this moment.
    opens: Moment | None = None


class Fleet(_Spec, frozen=True):
    """`venues` generated venues alike, ids venue-001 ... (besides any listed ones)."""

    venues: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    taps: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    id_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,50}$")] = "venue"
    city: str = "Utrecht"
    lat: float = 52.09
    lon: float = 5.12
    spread_km: NonNegative = 30.0


class Sensors(_Spec, frozen=True):
    """Faults every probe has a little of, all the time."""

    noise_c: NonNegative = 0.05
    dropout: Fraction = 0.0  # share of samples that never arrive
    spikes: Fraction = 0.0  # share of samples that read wildly wrong


class Network(_Spec, frozen=True):
    duplicates: Fraction = 0.0  # share of messages sent twice
    reorder: Fraction = 0.0  # share of messages sent after their successor


class Staff(_Spec, frozen=True):
    """What the bar staff record in Tapsense, as they would through the API or the CLI."""

    # Share of keg changes nobody records (ingest infers them from the pours).
    forget_keg_changes: Fraction = 0.0


class _Event(_Spec, kw_only=True, frozen=True, tag_field="kind"):
    at: Moment
    duration: Duration | None = None


class CoolerFailure(_Event, kw_only=True, frozen=True, tag="cooler_failure"):
    venue: Id


class WarmingLine(_Event, kw_only=True, frozen=True, tag="warming_line"):
    """One tap's line loses its insulation: it warms this much faster when idle."""

    venue: Id
    tap: Id
    factor: Positive = 8.0


class SensorFault(_Event, kw_only=True, frozen=True, tag="sensor_fault"):
    venue: Id
    tap: Id
    fault: Literal["stuck", "silent", "spikes", "drift"]
    magnitude: float = 1.0  # drift: °C per hour; spikes: share of samples


class Leak(_Event, kw_only=True, frozen=True, tag="leak"):
    venue: Id
    tap: Id
    ml_per_min: Positive = 20.0


class ClockSkew(_Event, kw_only=True, frozen=True, tag="clock_skew"):
    """The venue device's clock runs this many seconds off (negative: behind)."""

    venue: Id
    seconds: float


class Offline(_Event, kw_only=True, frozen=True, tag="offline"):
    """The venue's internet is down: its agent spools and catches up afterwards."""

    venue: Id


class Festival(_Event, kw_only=True, frozen=True, tag="festival"):
    name: str
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    radius_km: Positive = 15.0
    boost: Positive = 1.8
    beers: list[str] = []


class CouponCampaign(_Event, kw_only=True, frozen=True, tag="coupon_campaign"):
    """Tasting coupons for `beer` handed out at the venues within `radius_km`: each redeemed
    coupon is a pour more, `uplift` times the beer's own pours there while it runs (the
    ground truth marks those pours, so the true effect is known). `tapsense simulate`
    registers the campaign and launches it; the staff redeem a code at each such pour."""

    name: str
    beer: str
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    radius_km: Positive = 15.0
    uplift: NonNegative = 0.3
    codes_per_venue: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 500


Event = (
    CoolerFailure
    | WarmingLine
    | SensorFault
    | Leak
    | ClockSkew
    | Offline
    | Festival
    | CouponCampaign
)


class Scenario(_Spec, frozen=True):
    name: str
    start: Moment
    duration: Duration
    description: str = ""
    extends: str | None = None
    seed: int = 1
    sample_interval: Duration = "30s"
    beers: list[Beer] = msgspec.field(default_factory=lambda: [Beer(name="house lager")])
    venues: list[Venue] = []
    fleet: Fleet | None = None
    sensors: Sensors = Sensors()
    network: Network = Network()
    staff: Staff = Staff()
    events: list[Event] = []

    def __post_init__(self) -> None:
        if not self.venues and self.fleet is None:
            raise ValueError("a scenario needs `venues`, a `fleet`, or both")


@dataclass(frozen=True, slots=True)
class _Part:
    """One file of a scenario: the base it extends comes before it."""

    path: Path
    text: str
    data: dict[str, Any]


def _line_of(text: str, steps: list[str | int]) -> int | None:
    """The 1-based line of the YAML node at a decoded path, or of its nearest parent."""
    try:
        node: Any = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for step in steps:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            pair = next(((k, v) for k, v in node.value if getattr(k, "value", None) == step), None)
            if pair is None:
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value)
        ):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _split_error(message: str) -> tuple[str, list[str | int]]:
    """msgspec's `reason - at `$.events[2].at`` into the reason and the path's steps."""
    match = re.search(r" - at `\$((?:\.[A-Za-z_]\w*|\[\d+\])*)`$", message)
    if not match:
        return message, []
    steps: list[str | int] = [
        int(step[1:-1]) if step.startswith("[") else step[1:]
        for step in re.findall(r"\.[A-Za-z_]\w*|\[\d+\]", match.group(1))
    ]
    return message[: match.start()], steps


def _field(steps: list[str | int]) -> str:
    text = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps).lstrip(".")
    return text or "top level"


def _read(path: Path, seen: tuple[Path, ...] = ()) -> list[_Part]:
    if path in seen:
        raise ScenarioError(f"{path}: `extends` leads back to this file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}{where}: not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:  # the reader's: characters YAML does not allow
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    except (ValueError, OverflowError) as exc:  # a date YAML reads but Python cannot hold
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ScenarioError(f"{path}: not valid YAML: nested too deeply") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path} line 1: a scenario is a mapping of keys (name, start, ...)")
    base = data.get("extends")
    if base is not None and (not isinstance(base, str) or "\0" in base):
        raise ScenarioError(f"{path}: `extends` names a file: a path, not {base!r:.80}")
    parts = []
    if base:
        try:
            parts = _read((path.parent / base).resolve(), (*seen, path))
        except ScenarioError as exc:
            raise ScenarioError(f"{path}: in the file it extends ({base:.80}): {exc}") from exc
    return [*parts, _Part(path, text, data)]


def _merge(parts: list[_Part]) -> dict[str, Any]:
    """Later files override earlier ones key by key; `venues` and `events` add up."""
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part.data)
    for key in ("venues", "events"):
        merged[key] = [item for part in parts for item in (part.data.get(key) or [])]
    merged.pop("extends", None)
    return merged


def _locate(parts: list[_Part], steps: list[str | int]) -> tuple[_Part, list[str | int]]:
    """Which file an error's path points into, and the path within that file."""
    if not steps:
        return parts[-1], steps
    head = steps[0]
    if head in ("venues", "events") and len(steps) > 1 and isinstance(steps[1], int):
        index = steps[1]
        for part in parts:
            count = len(part.data.get(str(head)) or [])
            if index < count:
                return part, [head, index, *steps[2:]]
            index -= count
    return next((p for p in reversed(parts) if head in p.data), parts[-1]), steps


def _fail(parts: list[_Part], reason: str, steps: list[str | int]) -> ScenarioError:
    part, local = _locate(parts, steps)
    # An unknown key is best shown on its own line, not on the line of the mapping holding it.
    unknown = re.search(r"unknown field `([^`]+)`", reason)
    line = _line_of(part.text, [*local, unknown.group(1)] if unknown else local)
    at = f" line {line}" if line else ""
    return ScenarioError(f"{part.path}{at}, {_field(local)}: {reason}")


def load(path: Path) -> Scenario:
    """Read, merge (`extends`) and validate a scenario file."""
    parts = _read(path.resolve())
    try:
        scenario = msgspec.convert(_merge(parts), Scenario, strict=False)
    except msgspec.ValidationError as exc:
        reason, steps = _split_error(str(exc))
        raise _fail(parts, reason, steps) from exc
    for reason, steps in _reference_errors(scenario):
        raise _fail(parts, reason, steps)
    return scenario


def venue_ids(scenario: Scenario) -> list[str]:
    """Every venue of the scenario: the listed ones, then the fleet's (venue-001, ...)."""
    listed = [v.id for v in scenario.venues]
    fleet = scenario.fleet
    generated = [f"{fleet.id_prefix}-{i + 1:03d}" for i in range(fleet.venues)] if fleet else []
    return listed + [v for v in generated if v not in listed]


def tap_specs(scenario: Scenario, venue: Venue) -> list[Tap]:
    """A venue's taps: as listed, or `taps` of them (tap-01, ...) pouring the beers in turn."""
    if isinstance(venue.taps, list):
        return venue.taps
    beers = scenario.beers
    return [Tap(id=f"tap-{t + 1:02d}", beer=beers[t % len(beers)].name) for t in range(venue.taps)]


def _reference_errors(scenario: Scenario) -> list[tuple[str, list[str | int]]]:
    errors: list[tuple[str, list[str | int]]] = []
    beers = {b.name for b in scenario.beers}
    for v, venue in enumerate(scenario.venues):
        for t, tap in enumerate(venue.taps if isinstance(venue.taps, list) else []):
            if tap.beer not in beers:
                errors.append((f"unknown beer {tap.beer!r}", ["venues", v, "taps", t, "beer"]))
    known = set(venue_ids(scenario))
    for e, event in enumerate(scenario.events):
        venue_id = getattr(event, "venue", None)
        if venue_id is not None and venue_id not in known:
            errors.append((f"unknown venue {venue_id!r}", ["events", e, "venue"]))
        if event.at < scenario.start:
            errors.append(("`at` is before the scenario's start", ["events", e, "at"]))
        if isinstance(event, CouponCampaign) and event.beer not in beers:
            errors.append((f"unknown beer {event.beer!r}", ["events", e, "beer"]))
    return errors


def shifted(scenario: Scenario, start: datetime) -> Scenario:
    """The same scenario starting at `start`, every event moved with it (for real time)."""
    delta = start - scenario.start
    events = [msgspec.structs.replace(e, at=e.at + delta) for e in scenario.events]
    return msgspec.structs.replace(scenario, start=start, events=events)
