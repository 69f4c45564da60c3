"""InfluxDB line protocol for Tapsense's measurements. Pure: values in, bytes out.

One definition of the time-series schema (measurements, tags, fields), used by the writer and,
through the constants, by every InfluxQL query. Built with f-strings, not `influxdb_client.Point`
(about ten times faster, see DESIGN.md); every tag value is escaped.

    temperature,venue=V,tap=T c=4.25,seq=17i <ts ms>
    pour,venue=V,tap=T ml=330.0,dur_ms=4100i,seq=17i <ts ms>
    quality,venue=V,tap=T,check=warm_beer level="warning",value=8.1,detail=1.7e12 <ts ms>
    device_status,venue=V,device=D state="online" <ts ms>
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.wire import Pour, Temperature
from timeseries.events import QualityEvent

TEMPERATURE = "temperature"
POUR = "pour"
QUALITY = "quality"
DEVICE_STATUS = "device_status"
PRECISION = "ms"

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": "", "\\": "\\\\"})
_STRING_ESCAPES = str.maketrans({'"': r"\"", "\\": "\\\\", "\n": r"\n"})


def tag(value: str) -> str:
    return value.translate(_TAG_ESCAPES)


def string_field(value: str) -> str:
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def temperatures(venue: str, seq: int, readings: Iterable[Temperature]) -> list[str]:
    head = f"{TEMPERATURE},venue={tag(venue)},tap="
    return [f"{head}{tag(r.tap)} c={r.c!r},seq={seq}i {r.ts}" for r in readings]


def pours(venue: str, seq: int, readings: Iterable[Pour]) -> list[str]:
    head = f"{POUR},venue={tag(venue)},tap="
    return [
        f"{head}{tag(r.tap)} ml={r.ml!r},dur_ms={r.dur_ms}i,seq={seq}i {r.ts}" for r in readings
    ]


def quality_events(events: Iterable[QualityEvent]) -> list[str]:
    """Venue-wide checks (tap None) are written without a tap tag."""
    return [
        f"{QUALITY},venue={tag(e.venue)}{'' if e.tap is None else ',tap=' + tag(e.tap)},"
        f"check={tag(e.check)} level={string_field(e.level)},value={e.value!r},"
        f"detail={e.detail!r} {e.ts}"
        for e in events
    ]


def device_status(venue: str, device: str, state: str, ts_ms: int) -> str:
    return (
        f"{DEVICE_STATUS},venue={tag(venue)},device={tag(device)} "
        f"state={string_field(state)} {ts_ms}"
    )


def body(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode() if lines else b""
