"""A venue gone silent while it is open: no reading for `alerts.silent_after_s`, as InfluxDB
holds them. The broker's last will tells when a device drops off the network (`device_offline`);
this catches the rest: a box that is connected but sends nothing, a probe bus that died.

`silence_signals` is pure. Only venues that sent something within `LOOKBACK_S` are judged: a
venue that never sent, or a simulated one replaying last year, is not silent *now*; one that
stopped earlier had its alert raised then, and it stays until the readings come back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from alerts.lifecycle import VENUE_SILENT, Signal
from registry.models import Venue
from timeseries import lineproto
from timeseries.events import Level
from timeseries.influx import InfluxQL

LOOKBACK_S = 24 * 3600


def silence_signals(
    last_seen: Mapping[str, int],
    venues: Iterable[Venue],
    silent_now: set[str],
    open_at: Callable[[Venue, int], bool],
    now_ms: int,
    silent_after_s: float,
) -> list[Signal]:
    """Signals for the venues whose silence began or ended: a warning for a venue open now
    whose newest reading is older than `silent_after_s`, an ok for one that sends again."""
    signals = []
    for venue in venues:
        seen = last_seen.get(venue.id)
        if seen is None:
            continue
        quiet = now_ms - seen >= silent_after_s * 1000
        if quiet and venue.id not in silent_now and open_at(venue, now_ms):
            signals.append(Signal(venue.id, "", VENUE_SILENT, Level.WARNING, now_ms, seen, 0.0))
        elif not quiet and venue.id in silent_now:
            signals.append(Signal(venue.id, "", VENUE_SILENT, Level.OK, now_ms, seen, 0.0))
    return signals


def last_readings(influx: InfluxQL) -> dict[str, int]:
    """Each venue's newest temperature reading within the lookback (device time, ms)."""
    series = influx.query(
        f'SELECT last("c") FROM "{lineproto.TEMPERATURE}" '
        f'WHERE time > now() - {int(LOOKBACK_S)}s GROUP BY "venue"'
    )
    return {s["tags"]["venue"]: int(s["values"][0][0]) for s in series if s.get("values")}
