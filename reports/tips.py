"""The tips catalogue: rules over a month's figures, each tip carrying the figures that justify
it and what acting on it is worth a month, in litres (and money where the beer has a price).
Pure; each rule is a function tested on its own (tests/test_report_tips.py). The words are
the renderer's (reports/render.py), from the message catalogue, one message per rule.

Worth is an estimate an owner can follow: beer not sold while a tap stood dry at the rate the
beer sells on that weekday, beer served out of range, beer foamed or leaked away. A rule whose
worth cannot be put in litres (answering alerts sooner) has worth 0 and comes last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reports.model import Report, Tip

EXTRA_KEG_MIN_STOCK_OUTS = 2  # on the same weekday
OUT_OF_RANGE_SHARE = 0.10  # of open hours
OUT_OF_RANGE_MIN_HOURS = 10.0  # measured open hours before a tap is judged
FOAM_MIN_LITRES = 2.0
LEAK_MIN_LITRES = 1.0
ACKNOWLEDGE_WITHIN_S = 3600.0
WEAK_SELLER_SHARE = 0.5  # of an equal share among the beers
WEAK_SELLER_MIN_BEERS = 3
BELOW_REGION_SHARE = 0.8  # of the region's median litres per tap


@dataclass(frozen=True, slots=True)
class TipFacts:
    """The report and the few figures behind tips that the report does not show itself."""

    report: Report
    beer_weekday_litres: Mapping[str, list[float]]  # litres sold per local weekday
    open_hours: float  # the month's
    price: Mapping[str, float | None]  # per litre, by beer


def _tip(rule: str, worth_l: float, price: float | None, **figures: float | int | str) -> Tip:
    return Tip(
        rule=rule,
        worth_litres=round(worth_l, 3),
        worth_money=round(worth_l * price, 2) if price is not None else None,
        figures=figures,
    )


def _tap_beer(report: Report, tap: str) -> str | None:
    for t in report.by_tap:
        if t.tap == tap and t.beers:
            return t.beers[-1]
    return None


def extra_keg(facts: TipFacts) -> list[Tip]:
    """A beer that ran dry on the same weekday twice or more: order an extra keg for it."""
    report = facts.report
    by: dict[tuple[str, int], list[int]] = {}
    for out in report.stock_outs:
        if out.beer is not None:
            by.setdefault((out.beer, out.weekday), []).append(out.open_minutes)
    tips = []
    for (beer, weekday), minutes in sorted(by.items()):
        if len(minutes) < EXTRA_KEG_MIN_STOCK_OUTS:
            continue
        litres = facts.beer_weekday_litres.get(beer, [0.0] * 7)
        total = sum(litres)
        # How fast it sells on that weekday's open hours, a month holding about 4 of each.
        per_open_hour = litres[weekday] / max(facts.open_hours / 7, 1.0)
        dry_hours = sum(minutes) / 60
        tips.append(
            _tip(
                "extra_keg",
                per_open_hour * dry_hours,
                facts.price.get(beer),
                beer=beer,
                weekday=weekday,
                stock_outs=len(minutes),
                dry_open_hours=round(dry_hours, 2),
                weekday_share=round(litres[weekday] / total, 4) if total else 0.0,
            )
        )
    return tips


def out_of_range(facts: TipFacts) -> list[Tip]:
    """A tap out of its beer's range for a tenth of its open hours or more: mostly too warm,
    have the cooler serviced (`service_cooler`); mostly too cold, set it warmer (`too_cold`)."""
    report = facts.report
    litres = {t.tap: t.litres for t in report.by_tap}
    tips = []
    for c in report.compliance:
        if c.open_time_in_range is None or c.open_hours_measured < OUT_OF_RANGE_MIN_HOURS:
            continue
        out = 1 - c.open_time_in_range
        if out < OUT_OF_RANGE_SHARE:
            continue
        served_out = litres.get(c.tap, 0.0) * (1 - (c.volume_in_range or 1.0))
        beer = _tap_beer(report, c.tap)
        cold = (c.open_time_too_cold or 0.0) > out / 2
        tips.append(
            _tip(
                "too_cold" if cold else "service_cooler",
                served_out,
                facts.price.get(beer or ""),
                tap=c.tap,
                beer=beer or "?",
                out_of_range_share=round(out, 4),
                litres_out_of_range=round(served_out, 2),
            )
        )
    return tips


def _per_tap(rule: str, facts: TipFacts, litres_by_tap: dict[str, float],
             at_least: float) -> list[Tip]:  # fmt: skip
    report = facts.report
    return [_tip(rule, litres, facts.price.get(_tap_beer(report, tap) or ""), tap=tap,
                 litres=round(litres, 2))
            for tap, litres in sorted(litres_by_tap.items()) if litres >= at_least]  # fmt: skip


def foam(facts: TipFacts) -> list[Tip]:
    """A tap that foamed away litres: check its line temperature and gas pressure."""
    return _per_tap("foam", facts, facts.report.waste.foam_by_tap, FOAM_MIN_LITRES)


def leak(facts: TipFacts) -> list[Tip]:
    """A tap whose meter reported a slow endless flow: find and fix the leak."""
    return _per_tap("leak", facts, facts.report.waste.leak_by_tap, LEAK_MIN_LITRES)


def acknowledge_sooner(facts: TipFacts) -> list[Tip]:
    """Alerts nobody acknowledged, or acknowledged after more than an hour (median)."""
    incidents = facts.report.incidents
    slow = (incidents.median_to_acknowledge_s or 0) > ACKNOWLEDGE_WITHIN_S
    if not slow and incidents.never_acknowledged == 0:
        return []
    return [
        _tip(
            "acknowledge_sooner",
            0.0,
            None,
            alerts=incidents.total,
            never_acknowledged=incidents.never_acknowledged,
            median_minutes=round((incidents.median_to_acknowledge_s or 0) / 60),
        )
    ]


def weak_seller(facts: TipFacts) -> list[Tip]:
    """A beer selling under half an equal share: put a better seller on its tap."""
    beers = facts.report.beers
    if len(beers) < WEAK_SELLER_MIN_BEERS:
        return []
    equal = 1 / len(beers)
    best, worst = beers[0], beers[-1]
    if worst.share >= WEAK_SELLER_SHARE * equal:
        return []
    gain = sum(b.litres for b in beers) * equal - worst.litres
    return [
        _tip(
            "weak_seller",
            gain,
            facts.price.get(best.beer),
            beer=worst.beer,
            share=round(worst.share, 4),
            best=best.beer,
            best_share=round(best.share, 4),
        )
    ]


def below_region(facts: TipFacts) -> list[Tip]:
    """Selling clearly less per tap than the region's median venue."""
    region = facts.report.region_comparison
    if not region.included or region.litres_per_tap is None or not region.median_litres_per_tap:
        return []
    if region.litres_per_tap >= BELOW_REGION_SHARE * region.median_litres_per_tap:
        return []
    gap = (region.median_litres_per_tap - region.litres_per_tap) * facts.report.taps
    return [
        _tip(
            "below_region",
            gap,
            None,
            litres_per_tap=round(region.litres_per_tap, 1),
            median_litres_per_tap=round(region.median_litres_per_tap, 1),
            venues=region.other_venues,
        )
    ]


RULES: tuple[Callable[[TipFacts], list[Tip]], ...] = (
    extra_keg,
    out_of_range,
    foam,
    leak,
    weak_seller,
    below_region,
    acknowledge_sooner,
)


def tips_for(facts: TipFacts) -> list[Tip]:
    """Every rule's tips, worth most first (in litres: money is not set for every beer)."""
    tips = [tip for rule in RULES for tip in rule(facts)]
    return sorted(tips, key=lambda t: (-t.worth_litres, t.rule, sorted(t.figures.items())))
