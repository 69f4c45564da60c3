"""The report model rendered for people: HTML with inline SVG charts (Vega-Altair, rendered by
vl-convert without a browser), PDF from that HTML (WeasyPrint), and JSON as it is. Every word
comes from the message catalogue (`texts`), numbers, money and dates in the reader's locale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert
from babel.dates import format_date, get_day_names
from babel.numbers import format_currency, format_percent
from jinja2 import Environment, FileSystemLoader, select_autoescape

from alerts.messages import tap_name, title
from reports.model import FORMATS, Report, Tip
from texts import Texts

CURRENCY = "EUR"
NO_FIGURE = "\u2013"  # an en dash: no base to compare with
INK, ACCENT, MUTED = "#222222", "#b5651d", "#8a7f6a"
_TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True, slots=True)
class Words:
    """A reader's formats: numbers, litres, shares, money, weekdays, in their language."""

    t: Texts

    def litres(self, value: float) -> str:
        return self.t._("%(litres)s l", litres=self.t.number(value, 1))

    def share(self, value: float | None) -> str:
        if value is None:
            return NO_FIGURE
        return format_percent(value, format="#,##0.0%", locale=self.t.locale)

    def change(self, value: float | None) -> str:
        if value is None:
            return NO_FIGURE
        sign = "+" if value > 0 else ""
        return sign + format_percent(value, format="#,##0.0%", locale=self.t.locale)

    def money(self, value: float | None) -> str:
        if value is None:
            return ""
        return format_currency(value, CURRENCY, locale=self.t.locale)

    def weekday(self, day: int) -> str:
        return str(get_day_names("wide", locale=self.t.locale)[day])

    def weekday_short(self, day: int) -> str:
        return str(get_day_names("abbreviated", locale=self.t.locale)[day])

    def month(self, month: str) -> str:
        year, number = (int(part) for part in month.split("-"))
        return format_date(date(year, number, 1), "LLLL yyyy", locale=self.t.locale)

    def open_time(self, minutes: int) -> str:
        """`45 minutes`, `3 hours`: minutes under two hours, as a guest would count them."""
        if minutes < 120:
            return self.t.ngettext("%(n)s minute", "%(n)s minutes", minutes)
        return self.t.duration(minutes * 60)


def check_name(t: Texts, check: str) -> str:
    """The alerts' own titles for their checks: one word for one thing in alerts and reports."""
    try:
        return title(t, check)
    except KeyError:
        return check


def tip_text(w: Words, tip: Tip) -> str:
    """One sentence per rule: what the figures say, and what to do."""
    text = _tip_words(w, tip)
    return text[:1].upper() + text[1:]  # "tap 3 was ...": a sentence starts with a capital


def _tip_words(w: Words, tip: Tip) -> str:
    t, f = w.t, tip.figures
    if tip.rule == "extra_keg":
        return t._(
            "%(beer)s sells %(share)s of its volume on %(weekday)s and ran dry %(count)s "
            "times on that day this month. Order an extra keg before %(weekday)s.",
            beer=f["beer"],
            share=w.share(float(f["weekday_share"])),
            weekday=w.weekday(int(f["weekday"])),
            count=f["stock_outs"],
        )
    if tip.rule == "service_cooler":
        return t._(
            "%(tap)s was out of its serving range %(share)s of its open hours: have "
            "its cooler and line serviced.",
            tap=tap_name(t, str(f["tap"])),
            share=w.share(float(f["out_of_range_share"])),
        )
    if tip.rule == "too_cold":
        return t._(
            "%(tap)s served %(beer)s below its serving range %(share)s of its open "
            "hours: set its cooler or line cooling warmer for this beer.",
            tap=tap_name(t, str(f["tap"])),
            beer=f["beer"],
            share=w.share(float(f["out_of_range_share"])),
        )
    if tip.rule == "foam":
        return t._(
            "%(tap)s foamed away about %(litres)s: check its line temperature and gas pressure.",
            tap=tap_name(t, str(f["tap"])),
            litres=w.litres(float(f["litres"])),
        )
    if tip.rule == "leak":
        return t._(
            "%(tap)s leaked about %(litres)s: have its coupling and line checked.",
            tap=tap_name(t, str(f["tap"])),
            litres=w.litres(float(f["litres"])),
        )
    if tip.rule == "weak_seller":
        return t._(
            "%(beer)s sold only %(share)s of your volume, %(best)s %(best_share)s: "
            "consider a better seller on its tap.",
            beer=f["beer"],
            share=w.share(float(f["share"])),
            best=f["best"],
            best_share=w.share(float(f["best_share"])),
        )
    if tip.rule == "below_region":
        return t._(
            "You sold %(litres)s per tap, the median venue of your region %(median)s: "
            "see which beers and hours make the difference.",
            litres=w.litres(float(f["litres_per_tap"])),
            median=w.litres(float(f["median_litres_per_tap"])),
        )
    if tip.rule == "acknowledge_sooner":
        return t.ngettext(
            "%(n)s alert was never acknowledged; answering alerts sooner keeps beer in range.",
            "%(n)s alerts were never acknowledged; answering alerts sooner keeps beer in range.",
            int(f["never_acknowledged"]),
        )
    raise ValueError(f"no words for tip rule {tip.rule!r}")


def _svg(chart: alt.TopLevelMixin, language: str) -> str:
    svg: str = vl_convert.vegalite_to_svg(
        chart.to_dict(), format_locale="nl-NL" if language == "nl" else "en-GB"
    )
    # The SVG goes inside the page: its XML declaration may not.
    return svg[svg.index("<svg") :] if "<svg" in svg else svg


def beer_chart(w: Words, report: Report) -> str:
    rows = [{"beer": b.beer, "litres": round(b.litres, 1)} for b in report.beers]
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(color=ACCENT)
        .encode(
            x=alt.X("litres:Q", title=w.t._("litres")),
            y=alt.Y("beer:N", sort="-x", title=None),
            tooltip=["beer:N", "litres:Q"],
        )
        .properties(width=420, height=max(40, 26 * len(rows)))
    )
    return _svg(chart, w.t.language)


def heat_chart(w: Words, report: Report) -> str:
    days = [w.weekday_short(d) for d in range(7)]
    rows = [
        {"day": days[d], "hour": h, "litres": round(report.heat_map[d][h], 2)}
        for d in range(7)
        for h in range(24)
    ]
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title=w.t._("hour")),
            y=alt.Y("day:N", sort=days, title=None),
            color=alt.Color("litres:Q", title=w.t._("litres"), scale=alt.Scale(scheme="oranges")),
        )
        .properties(width=460, height=170)
    )
    return _svg(chart, w.t.language)


def context(report: Report, language: str) -> dict[str, Any]:
    """Everything the template shows, already in words."""
    t = Texts(language, report.timezone)
    w = Words(t)
    month = w.month(report.month)
    region = report.region_comparison
    c: dict[str, Any] = {
        "language": language,
        "title": t._("Tapsense report %(month)s", month=month),
        "venue": report.venue_name,
        "month": month,
        "has_taps": report.taps > 0,
        "has_data": report.has_data,
        "no_taps": t._(
            "This venue has no taps registered, so there is nothing to report. "
            "Register its taps to get next month's report."
        ),
        "no_data": t._(
            "No readings and no pours arrived for %(month)s. If the venue was "
            "open, check that its sensor box is connected.",
            month=month,
        ),
        "footer": t._(
            "Figures in %(zone)s time. Generated %(when)s by Tapsense.",
            zone=report.timezone,
            when=t.datetime(report.generated_ms),
        ),
        "w": w,
        "t": t,
    }
    if not report.has_data or not report.taps:
        return c
    trend = report.trend
    c["headline"] = [
        (t._("Sold"), w.litres(report.litres)),
        (t._("Pours"), t.number(report.pours, 0)),
        (t._("Against the previous month"), w.change(trend.previous_month_change)),
        (t._("Against the same month last year"), w.change(trend.last_year_change)),
    ]
    if report.opened_ms is not None:
        c["opened"] = t._(
            "First readings on %(when)s: this month is not a full month for this venue.",
            when=t.datetime(report.opened_ms),
        )
    c["tips_title"] = t._("What to do")
    c["tips"] = [
        {
            "text": tip_text(w, tip),
            "worth": t._("About %(litres)s a month at stake", litres=w.litres(tip.worth_litres))
            + (f" ({w.money(tip.worth_money)})" if tip.worth_money else "")
            if tip.worth_litres > 0
            else "",
        }
        for tip in report.tips
    ]
    c["no_tips"] = t._("Nothing stood out this month: keep it up.")
    c["beers_title"] = t._("Volume by beer")
    c["beer_chart"] = beer_chart(w, report) if report.beers else ""
    c["beer_head"] = [t._("Beer"), t._("Litres"), t._("Share"), t._("Revenue")]
    c["beer_rows"] = [
        (b.beer, w.litres(b.litres), w.share(b.share), w.money(b.money)) for b in report.beers
    ]
    c["has_money"] = any(b.money is not None for b in report.beers)
    if len(report.beers) >= 2:
        c["best_worst"] = t._(
            "Best seller: %(best)s. Slowest: %(worst)s.",
            best=report.beers[0].beer,
            worst=report.beers[-1].beer,
        )
    c["taps_title"] = t._("Taps and kegs")
    c["tap_head"] = [t._("Tap"), t._("Beers"), t._("Litres"), t._("Kegs put on")]
    c["tap_rows"] = [
        (x.tap, ", ".join(x.beers) or NO_FIGURE, w.litres(x.litres), str(x.kegs))
        for x in report.by_tap
    ]
    c["heat_title"] = t._("When you sell")
    c["heat_chart"] = heat_chart(w, report)
    c["peaks"] = [
        t._(
            "%(weekday)s %(hour)s:00: %(litres)s",
            weekday=w.weekday(p.weekday),
            hour=f"{p.hour:02d}",
            litres=w.litres(p.litres),
        )
        for p in report.peaks
    ]
    c["peaks_intro"] = t._("Busiest hours:")
    c["compliance_title"] = t._("Serving temperature")
    c["compliance_head"] = [
        t._("Tap"),
        t._("Volume served in range"),
        t._("Open hours in range"),
        t._("Open hours measured"),
    ]
    c["compliance_rows"] = [
        (
            x.tap,
            w.share(x.volume_in_range),
            w.share(x.open_time_in_range),
            t.number(x.open_hours_measured, 1),
        )
        for x in report.compliance
    ]
    incidents = report.incidents
    c["incidents_title"] = t._("Quality alerts")
    c["incidents_text"] = (
        t.ngettext("%(n)s alert this month.", "%(n)s alerts this month.", incidents.total)
        + (
            " "
            + t._(
                "Median time to acknowledge: %(wait)s.",
                wait=t.duration(incidents.median_to_acknowledge_s),
            )
            if incidents.median_to_acknowledge_s is not None
            else ""
        )
        + (
            " "
            + t.ngettext(
                "%(n)s never acknowledged.",
                "%(n)s never acknowledged.",
                incidents.never_acknowledged,
            )
            if incidents.never_acknowledged
            else ""
        )
    )
    c["incident_rows"] = [(check_name(t, check), str(n)) for check, n in incidents.by_check.items()]
    waste = report.waste
    c["waste_title"] = t._("Estimated waste")
    c["waste_text"] = t._(
        "%(foam)s foamed away in %(pours)s foamy pours; %(leak)s leaked.",
        foam=w.litres(waste.foam_litres),
        pours=t.number(waste.foamy_pours, 0),
        leak=w.litres(waste.leak_litres),
    )
    c["stock_title"] = t._("Stock-outs")
    c["stock_none"] = t._("No tap ran dry while you were open.")
    c["stock_rows"] = [
        t._(
            "%(tap)s (%(beer)s) ran dry on %(when)s for %(open)s of opening time.",
            tap=tap_name(t, s.tap),
            beer=s.beer or "?",
            when=t.datetime(s.from_ms),
            open=w.open_time(s.open_minutes),
        )
        for s in report.stock_outs
    ]
    c["region_title"] = t._("Your region")
    if region.included and region.litres_per_tap is not None:
        c["region_text"] = t._(
            "%(region)s: you sold %(litres)s per tap, the median of %(n)s other venues "
            "%(median)s. You served %(share)s in range, they %(median_share)s.",
            region=region.region,
            litres=w.litres(region.litres_per_tap),
            n=region.other_venues,
            median=w.litres(region.median_litres_per_tap or 0.0),
            share=w.share(region.share_in_range),
            median_share=w.share(region.median_share_in_range),
        )
    else:
        c["region_text"] = t._(
            "Left out: %(region)s has %(n)s other venues with taps, and a comparison needs at "
            "least five so that no single venue's figures can be told apart.",
            region=region.region,
            n=region.other_venues,
        )
    return c


def to_html(report: Report, language: str) -> str:
    return _environment().get_template("report.html").render(**context(report, language))


def to_pdf(report: Report, language: str) -> bytes:
    from weasyprint import HTML  # loads Pango: only where a PDF is made

    pdf: bytes = HTML(string=to_html(report, language), base_url=str(_TEMPLATES)).write_pdf()
    return pdf


def as_format(report: Report, fmt: str, language: str) -> bytes:
    if fmt == "json":
        return report.model_dump_json(indent=2).encode() + b"\n"
    if fmt == "html":
        return to_html(report, language).encode()
    if fmt == "pdf":
        return to_pdf(report, language)
    raise ValueError(f"no format {fmt!r}; there are {', '.join(FORMATS)}")
