"""The words of an alert: which tap and beer, what is happening, when it will matter, and what
to do. Pure: plain values and a `texts.Texts` in, strings out. Every text is a message of the
catalogue (`texts/`), so it reads the same in English and Dutch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alerts.lifecycle import DEVICE_OFFLINE, VENUE_SILENT, Change
from texts import Texts
from timeseries.events import Check, Level


@dataclass(frozen=True, slots=True)
class Item:
    """One alert as a notification tells it."""

    alert_id: int
    change: Change
    check: str
    severity: Level
    subject: str  # the tap, the device, or "" (venue-wide)
    beer: str | None
    limit_c: float | None  # the tap's warm limit, where it matters
    ts: int  # device time of the event behind the change
    value: float
    detail: float


@dataclass(frozen=True, slots=True)
class Line:
    alert_id: int
    change: Change
    severity: Level
    subject: str
    title: str
    headline: str
    remedy: str


def title(t: Texts, check: str) -> str:
    titles = {
        Check.WARM_BEER: t._("Warm beer"),
        Check.WARMING_TREND: t._("Line warming up"),
        Check.COOLER_FAILURE: t._("Cooler failing"),
        Check.STUCK_SENSOR: t._("Probe stuck"),
        Check.DEAD_SENSOR: t._("Probe silent"),
        Check.IMPLAUSIBLE: t._("Implausible temperature"),
        Check.KEG_LOW: t._("Keg running low"),
        Check.LEAK: t._("Leak"),
        Check.FOAMY: t._("Foamy pours"),
        Check.AFTER_HOURS: t._("Beer poured after hours"),
        Check.LINE_CLEANING: t._("Line cleaning overdue"),
        DEVICE_OFFLINE: t._("Sensor box offline"),
        VENUE_SILENT: t._("No readings"),
    }
    return titles[check]


def tap_name(t: Texts, tap: str) -> str:
    """`tap 3` for a tap numbered `3`; an id that names itself (`tap-03`) as it is."""
    return tap if tap.lower().startswith("tap") else t._("tap %(id)s", id=tap)


def _beer_on_tap(t: Texts, item: Item) -> str:
    tap = tap_name(t, item.subject)
    if item.beer:
        return t._("%(beer)s on %(tap)s", beer=item.beer, tap=tap)
    return tap[:1].upper() + tap[1:]


def _warm(t: Texts, i: Item) -> str:
    if i.limit_c is not None:
        return t._(
            "%(what)s is at %(temp)s °C, above its %(limit)s °C, since %(since)s.",
            what=_beer_on_tap(t, i),
            temp=t.number(i.value),
            limit=t.number(i.limit_c),
            since=t.time(int(i.detail)),
        )
    return t._(
        "%(what)s is at %(temp)s °C, too warm, since %(since)s.",
        what=_beer_on_tap(t, i),
        temp=t.number(i.value),
        since=t.time(int(i.detail)),
    )


def _trend(t: Texts, i: Item) -> str:
    eta = t.duration(max(60.0, (i.value - i.ts) / 1000))
    if i.limit_c is not None:
        return t._(
            "%(what)s is warming by %(rate)s °C an hour and will pass %(limit)s °C in "
            "about %(eta)s.",
            what=_beer_on_tap(t, i),
            rate=t.number(i.detail),
            limit=t.number(i.limit_c),
            eta=eta,
        )
    return t._(
        "%(what)s is warming by %(rate)s °C an hour and will be too warm in about %(eta)s.",
        what=_beer_on_tap(t, i),
        rate=t.number(i.detail),
        eta=eta,
    )


def _cooler(t: Texts, i: Item) -> str:
    n = int(i.detail)
    return t.ngettext(
        "%(n)d tap is warming: the cooler seems to be failing.",
        "%(n)d taps are warming together: the cooler seems to be failing.",
        n,
    )


def _keg(t: Texts, i: Item) -> str:
    left = t._(
        "The keg of %(what)s has about %(litres)s l left.",
        what=_beer_on_tap(t, i),
        litres=t.number(i.detail / 1000),
    )
    if i.value > i.ts:
        left += " " + t._("At this pace it runs out around %(time)s.", time=t.time(int(i.value)))
    return left


HEADLINES: dict[str, Callable[[Texts, Item], str]] = {
    Check.WARM_BEER: _warm,
    Check.WARMING_TREND: _trend,
    Check.COOLER_FAILURE: _cooler,
    Check.STUCK_SENSOR: lambda t, i: t._(
        "The probe of %(tap)s has read %(temp)s °C without change since %(since)s.",
        tap=tap_name(t, i.subject),
        temp=t.number(i.value),
        since=t.time(int(i.detail)),
    ),
    Check.DEAD_SENSOR: lambda t, i: t._(
        "No temperature from %(tap)s since %(since)s.",
        tap=tap_name(t, i.subject),
        since=t.time(int(i.detail)),
    ),
    Check.IMPLAUSIBLE: lambda t, i: t._(
        "The probe of %(tap)s reports %(temp)s °C, which beer in a line cannot be.",
        tap=tap_name(t, i.subject),
        temp=t.number(i.value),
    ),
    Check.KEG_LOW: _keg,
    Check.LEAK: lambda t, i: t._(
        "Beer is flowing from %(tap)s without anyone pouring: %(rate)s ml a second.",
        tap=tap_name(t, i.subject),
        rate=t.number(i.value),
    ),
    Check.FOAMY: lambda t, i: t._(
        "%(n)d of the last five pours of %(what)s were foamy; %(litres)s l wasted.",
        n=int(i.value),
        what=_beer_on_tap(t, i),
        litres=t.number(i.detail / 1000),
    ),
    Check.AFTER_HOURS: lambda t, i: t._(
        "%(litres)s l flowed from %(what)s while the venue was closed.",
        litres=t.number(i.value / 1000),
        what=_beer_on_tap(t, i),
    ),
    Check.LINE_CLEANING: lambda t, i: t._(
        "The line of %(tap)s was last cleaned %(days)s days ago.",
        tap=tap_name(t, i.subject),
        days=t.number(i.value, 0),
    ),
    DEVICE_OFFLINE: lambda t, i: t._(
        "Sensor box %(device)s went offline at %(time)s.", device=i.subject, time=t.time(i.ts)
    ),
    VENUE_SILENT: lambda t, i: t._(
        "No readings have come in since %(time)s, while the venue is open.",
        time=t.time(int(i.value)),
    ),
}


def remedy(t: Texts, check: str) -> str:
    remedies = {
        Check.WARM_BEER: t._(
            "Check the cold room and the line's cooling; do not serve the beer warm."
        ),
        Check.WARMING_TREND: t._("Check the line's insulation and the python's cooling."),
        Check.COOLER_FAILURE: t._(
            "Check the cooler: is it running, its door closed, its "
            "condenser free? Call the technician if it does not recover."
        ),
        Check.STUCK_SENSOR: t._(
            "Check the probe's cable and seat; replace the probe if it stays stuck."
        ),
        Check.DEAD_SENSOR: t._("Check the probe's cable and the sensor box."),
        Check.IMPLAUSIBLE: t._("The probe or its cable is probably faulty: check it."),
        Check.KEG_LOW: t._("Have a full keg ready and change it when this one runs out."),
        Check.LEAK: t._("Close the tap and check the coupler and the line for a leak."),
        Check.FOAMY: t._(
            "Check the beer's temperature and the CO2 pressure; clean the line if it goes on."
        ),
        Check.AFTER_HOURS: t._("Check that every tap is closed and who is pouring after hours."),
        Check.LINE_CLEANING: t._("Clean the line, and record the cleaning in Tapsense."),
        DEVICE_OFFLINE: t._("Check the sensor box's power and network connection."),
        VENUE_SILENT: t._(
            "Check that the sensor box is on and connected, and its probes "
            "plugged in; readings it kept are sent when it is back."
        ),
    }
    return remedies[check]


def line(t: Texts, item: Item) -> Line:
    if item.change is Change.RESOLVED:
        where = _beer_on_tap(t, item) if item.subject else t._("The venue")
        if item.check == DEVICE_OFFLINE:
            where = t._("Sensor box %(device)s", device=item.subject)
        headline = t._(
            "%(where)s is back to normal since %(time)s.", where=where, time=t.time(item.ts)
        )
        advice = ""
    else:
        headline = HEADLINES[item.check](t, item)
        advice = remedy(t, item.check)
    if item.change is Change.REMINDER:
        headline = t._("Still not acknowledged: %(headline)s", headline=headline)
    elif item.change is Change.ESCALATED:
        headline = t._("Nobody at the venue has acknowledged this: %(headline)s", headline=headline)
    return Line(item.alert_id, item.change, item.severity, item.subject, title(t, item.check),
                headline, advice)  # fmt: skip


def severity_word(t: Texts, severity: Level) -> str:
    return t._("Critical") if severity is Level.CRITICAL else t._("Warning")


def subject_line(t: Texts, venue_name: str, lines: list[Line]) -> str:
    """The e-mail subject: what it is about at a glance."""
    if all(x.change is Change.RESOLVED for x in lines):
        return t.ngettext(
            "%(venue)s: %(n)d alert resolved",
            "%(venue)s: %(n)d alerts resolved",
            len(lines),
            venue=venue_name,
        )
    if len(lines) == 1:
        return t._("%(venue)s: %(title)s", venue=venue_name, title=lines[0].title)
    return t.ngettext(
        "%(venue)s: %(n)d alert", "%(venue)s: %(n)d alerts", len(lines), venue=venue_name
    )
