"""An alert's life, as a pure function: a quality event and the alert as it stands in, the
transition out. No I/O: `alerts.store` reads the alert, calls this, and writes what it says in
one transaction.

One alert per (venue, subject, check) is open at a time; its subject is the tap, the device
(for a silent device) or "" (venue-wide: the cooler). Events carry the device's time (`ts`);
an event not newer than the last one the key has seen is a redelivery or arrived out of order,
and changes nothing. A recovery does not resolve at once: the alert is *recovering* and
resolves when no new raise came for `resolve_hold_s` (`due_resolution`), so a cooler that
flaps while it is being repaired stays one alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from timeseries.events import Check, Level

# Not a kernel check: the alerts service raises it from a device's `offline` status (its last
# will), and clears it when the device says `online` again.
DEVICE_OFFLINE = "device_offline"
# Nor this: the service raises it for a venue that sends no readings while it is open.
VENUE_SILENT = "venue_silent"
ALERT_CHECKS = (*(c.value for c in Check), DEVICE_OFFLINE, VENUE_SILENT)

SEVERITY_RANK = {Level.OK: 0, Level.WARNING: 1, Level.CRITICAL: 2}


class State(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Change(StrEnum):
    """What happened to an alert; also the kinds of notification a person may be sent."""

    OPENED = "opened"
    RAISED = "raised"  # severity went up (warning -> critical)
    LOWERED = "lowered"  # down, but not yet ok
    RECOVERING = "recovering"  # the check says ok; resolves after the hold-off
    RELAPSED = "relapsed"  # raised again while recovering: the same alert goes on
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    REMINDER = "reminder"  # still open and nobody acknowledged it
    ESCALATED = "escalated"  # to the organisation's operators


@dataclass(frozen=True, slots=True)
class Signal:
    """A check's level for one subject at one device time, with its evidence."""

    venue: str
    subject: str
    check: str
    level: Level
    ts: int
    value: float = 0.0
    detail: float = 0.0


@dataclass(frozen=True, slots=True)
class Current:
    """What the core needs of the open alert for a key (None: there is none)."""

    state: State
    severity: Level
    recovering_since_ts: int | None


@dataclass(frozen=True, slots=True)
class Step:
    """The core's verdict on a signal: how the alert changes."""

    change: Change
    severity: Level  # the alert's severity afterwards (for RECOVERING: unchanged)


def on_signal(current: Current | None, signal: Signal, last_ts: int | None) -> Step | None:
    """The change a signal makes; None when it makes none. `last_ts` is the newest device time
    the key has seen (None: never): anything not newer is a redelivery or stale."""
    if last_ts is not None and signal.ts <= last_ts:
        return None
    if current is None:
        if signal.level is Level.OK:
            return None  # nothing open: a recovery of something resolved, or never raised
        return Step(Change.OPENED, signal.level)
    if signal.level is Level.OK:
        if current.recovering_since_ts is not None:
            return None
        return Step(Change.RECOVERING, current.severity)
    if current.recovering_since_ts is not None:
        return Step(Change.RELAPSED, signal.level)
    rank, was = SEVERITY_RANK[signal.level], SEVERITY_RANK[current.severity]
    if rank > was:
        return Step(Change.RAISED, signal.level)
    if rank < was:
        return Step(Change.LOWERED, signal.level)
    return None


def due_resolution(recovering_seen_ms: int | None, now_ms: int, resolve_hold_s: float) -> bool:
    """Whether a recovering alert has stayed clear long enough to resolve. The hold-off runs
    from when the service heard of the recovery, on its own clock: a recovery replayed from a
    backfill still waits, and a flap raised meanwhile (`RELAPSED`) cancels it."""
    if recovering_seen_ms is None:
        return False
    return now_ms - recovering_seen_ms >= resolve_hold_s * 1000
