"""Live tap state, read from InfluxDB: what a venue's taps report right now."""

from __future__ import annotations

from pydantic import BaseModel

from timeseries import lineproto
from timeseries.events import Check
from timeseries.influx import InfluxQL


class TapState(BaseModel):
    tap: str
    temperature_c: float | None = None
    temperature_at_ms: int | None = None
    last_pour_ml: float | None = None
    last_pour_at_ms: int | None = None
    warm_beer: str = "ok"
    warm_beer_since_ms: int | None = None


class VenueState(BaseModel):
    venue: str
    taps: list[TapState]


def venue_state(influx: InfluxQL, venue: str) -> VenueState:
    """`venue` must be a registered venue's id (it matched the id pattern: nothing to escape)."""
    where = f"WHERE \"venue\" = '{venue}'"
    taps: dict[str, TapState] = {}

    def tap(series: dict) -> TapState:
        name = series["tags"]["tap"]
        return taps.setdefault(name, TapState(tap=name))

    for s in influx.query(
        f'SELECT last("c") FROM "{lineproto.TEMPERATURE}" {where} GROUP BY "tap"'
    ):
        ts, c = s["values"][0]
        state = tap(s)
        state.temperature_c, state.temperature_at_ms = c, ts
    for s in influx.query(f'SELECT last("ml") FROM "{lineproto.POUR}" {where} GROUP BY "tap"'):
        ts, ml = s["values"][0]
        state = tap(s)
        state.last_pour_ml, state.last_pour_at_ms = ml, ts
    q = (
        f'SELECT last("level") FROM "{lineproto.QUALITY}" {where} '
        f'AND "check" = \'{Check.WARM_BEER}\' GROUP BY "tap"'
    )
    for s in influx.query(q):
        ts, level = s["values"][0]
        state = tap(s)
        state.warm_beer, state.warm_beer_since_ms = level, ts
    return VenueState(venue=venue, taps=sorted(taps.values(), key=lambda t: t.tap))
