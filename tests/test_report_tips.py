"""The tips catalogue, one rule at a time: each fires on the figures that justify it, carries
them, and stays quiet just below its threshold; all of them ranked by what they are worth."""

from __future__ import annotations

from typing import Any

import pytest

from reports import tips
from reports.model import (
    BeerVolume,
    Compliance,
    Incidents,
    Region,
    Report,
    StockOut,
    TapVolume,
    Waste,
)
from reports.tips import TipFacts
from tests import reportdata

BASE = reportdata.report()
PRICE = {"pils": 7.5, "ipa": 11.0, "bock": None}
FRIDAY = 4


def facts(report: Report = BASE, **kwargs: Any) -> TipFacts:
    defaults: dict[str, Any] = {
        "beer_weekday_litres": {"ipa": [10.0, 10, 10, 10, 40, 10, 10]},
        "open_hours": 248.0,
        "price": PRICE,
    }
    return TipFacts(report=report, **{**defaults, **kwargs})


def with_(**update: Any) -> Report:
    return BASE.model_copy(update=update)


def test_the_made_up_month_itself_gives_no_tip_but_the_quiet_ones() -> None:
    assert {t.rule for t in BASE.tips} <= {"acknowledge_sooner"}


def stock_out(day: int, minutes: int, beer: str = "ipa") -> StockOut:
    return StockOut(tap="tap-02", beer=beer, from_ms=0, to_ms=1, open_minutes=minutes,
                    weekday=day)  # fmt: skip


def test_a_beer_dry_twice_on_fridays_asks_for_an_extra_keg_worth_its_friday_rate() -> None:
    report = with_(stock_outs=[stock_out(FRIDAY, 90), stock_out(FRIDAY, 30), stock_out(1, 60)])
    [tip] = tips.extra_keg(facts(report))
    assert tip.figures == {"beer": "ipa", "weekday": FRIDAY, "stock_outs": 2,
                           "dry_open_hours": 2.0, "weekday_share": 0.4}  # fmt: skip
    # 40 l on Fridays over a seventh of 248 open hours, for the 2 hours dry
    assert tip.worth_litres == pytest.approx(40 / (248 / 7) * 2, abs=1e-3)
    assert tip.worth_money == pytest.approx(tip.worth_litres * 11.0, abs=0.01)
    assert tips.extra_keg(facts(with_(stock_outs=[stock_out(FRIDAY, 90), stock_out(2, 9)]))) == []


def compliance(in_range: float, too_cold: float = 0.0, hours: float = 100.0) -> Compliance:
    return Compliance(tap="tap-03", volume_in_range=in_range, open_time_in_range=in_range,
                      open_time_too_cold=too_cold, open_hours_measured=hours)  # fmt: skip


def test_a_tap_out_of_range_a_tenth_of_its_hours_wants_service_or_a_warmer_setting() -> None:
    by_tap = [TapVolume(tap="tap-03", beers=["bock"], litres=200.0, kegs=4)]
    warm = tips.out_of_range(facts(with_(compliance=[compliance(0.88)], by_tap=by_tap)))
    assert [(t.rule, t.figures["tap"], t.figures["out_of_range_share"]) for t in warm] == [
        ("service_cooler", "tap-03", 0.12)]  # fmt: skip
    assert warm[0].worth_litres == pytest.approx(200 * 0.12)
    assert warm[0].worth_money is None  # bock has no price
    cold = tips.out_of_range(facts(with_(compliance=[compliance(0.8, too_cold=0.15)],
                                         by_tap=by_tap)))  # fmt: skip
    assert [t.rule for t in cold] == ["too_cold"]
    assert tips.out_of_range(facts(with_(compliance=[compliance(0.91)], by_tap=by_tap))) == []
    few_hours = with_(compliance=[compliance(0.5, hours=8)], by_tap=by_tap)
    assert tips.out_of_range(facts(few_hours)) == []


def waste(foam: dict[str, float], leak: dict[str, float]) -> Waste:
    return Waste(foamy_pours=10, foam_litres=sum(foam.values()), leak_litres=sum(leak.values()),
                 foam_by_tap=foam, leak_by_tap=leak)  # fmt: skip


def test_foam_and_leaks_are_worth_what_went_down_the_drain() -> None:
    report = with_(waste=waste({"tap-01": 2.5, "tap-02": 1.9}, {"tap-03": 1.2, "tap-01": 0.5}))
    [foam] = tips.foam(facts(report))
    assert (foam.figures, foam.worth_litres, foam.worth_money) == (
        {"tap": "tap-01", "litres": 2.5}, 2.5, 18.75)  # pils at 7.50  # fmt: skip
    [leak] = tips.leak(facts(report))
    assert leak.figures == {"tap": "tap-03", "litres": 1.2}


def beers(*shares: float) -> list[BeerVolume]:
    names = ("pils", "ipa", "bock", "wit")
    return [BeerVolume(beer=name, litres=share * 1000, share=share, money=None)
            for name, share in zip(names, shares, strict=False)]  # fmt: skip


def test_a_beer_under_half_an_equal_share_is_a_weak_seller() -> None:
    [tip] = tips.weak_seller(facts(with_(beers=beers(0.6, 0.3, 0.1))))
    assert tip.figures == {"beer": "bock", "share": 0.1, "best": "pils", "best_share": 0.6}
    assert tip.worth_litres == pytest.approx(1000 / 3 - 100, abs=1e-3)
    assert tips.weak_seller(facts(with_(beers=beers(0.5, 0.3, 0.2)))) == []
    assert tips.weak_seller(facts(with_(beers=beers(0.95, 0.05)))) == []  # two beers: no call


def region(litres: float, median: float, included: bool = True) -> Region:
    return Region(region="Utrecht", other_venues=7 if included else 3, included=included,
                  litres_per_tap=litres if included else None,
                  median_litres_per_tap=median if included else None, share_in_range=None,
                  median_share_in_range=None)  # fmt: skip


def test_selling_clearly_under_the_regions_median_per_tap_is_a_tip() -> None:
    [tip] = tips.below_region(facts(with_(region_comparison=region(60, 100))))
    assert tip.figures == {"litres_per_tap": 60.0, "median_litres_per_tap": 100.0, "venues": 7}
    assert tip.worth_litres == pytest.approx(40 * BASE.taps)
    assert tips.below_region(facts(with_(region_comparison=region(85, 100)))) == []
    assert tips.below_region(facts(with_(region_comparison=region(0, 0, included=False)))) == []


def test_alerts_left_unacknowledged_or_slow_ask_for_quicker_answers_and_come_last() -> None:
    slow = Incidents(total=4, by_check={"warm_beer": 4}, median_to_acknowledge_s=7200,
                     never_acknowledged=0)  # fmt: skip
    [tip] = tips.acknowledge_sooner(facts(with_(incidents=slow)))
    assert (tip.figures["median_minutes"], tip.worth_litres) == (120, 0.0)
    quick = slow.model_copy(update={"median_to_acknowledge_s": 600.0})
    assert tips.acknowledge_sooner(facts(with_(incidents=quick))) == []
    ignored = quick.model_copy(update={"never_acknowledged": 1})
    assert len(tips.acknowledge_sooner(facts(with_(incidents=ignored)))) == 1


def test_tips_are_ranked_by_what_they_are_worth() -> None:
    report = with_(
        waste=waste({"tap-01": 3.0}, {"tap-02": 9.0}),
        beers=beers(0.6, 0.3, 0.1),
        incidents=Incidents(total=1, by_check={"leak": 1}, median_to_acknowledge_s=None,
                            never_acknowledged=1),
    )  # fmt: skip
    ranked = tips.tips_for(facts(report))
    assert [t.rule for t in ranked] == ["weak_seller", "leak", "foam", "acknowledge_sooner"]
    assert [t.worth_litres for t in ranked] == sorted((t.worth_litres for t in ranked),
                                                      reverse=True)  # fmt: skip


def test_a_warm_tap_in_the_made_up_month_gets_its_tip_through_the_figures() -> None:
    report = reportdata.report(warm_tap="tap-02")
    rules = {(t.rule, t.figures.get("tap")) for t in report.tips}
    assert ("service_cooler", "tap-02") in rules
    tap2 = next(c for c in report.compliance if c.tap == "tap-02")
    # warm 20-24h of 16-24h (the made-up hours slip an hour after the clocks change)
    assert tap2.open_time_in_range == pytest.approx(0.5, abs=0.02)
