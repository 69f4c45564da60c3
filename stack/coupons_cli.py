"""`tapsense coupons ...`: festival campaigns from a shell, for operators. They act on the
registry directly (and read InfluxDB for results), as the API's routes do."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from coupons import codes, store
from coupons.store import CampaignIn, FestivalIn, Refused
from registry.access import AccessError, NotFound, now_ms
from registry.coupon_models import Campaign
from registry.db import engine_for, transaction
from stack.registry_cli import _organisation, _session, _venue, command_group
from stack.settings import Settings
from texts import LANGUAGES
from timeseries.influx import InfluxError, InfluxQL

EPILOG = """\
examples:
  tapsense coupons festival --org Brouwerij --name "Bokbierfestival" --lat 52.0907 \\
      --lon 5.1214 --from 2026-10-09T12:00+02:00 --to 2026-10-11T23:00+02:00 --beer 3
  tapsense coupons campaign --org Brouwerij --festival 1 --beer 3 --radius-km 15 \\
      --codes 50 --from 2026-10-01T00:00+02:00 --until 2026-10-31T00:00+01:00 \\
      --message-en "Taste our Herfstbok" --message-nl "Proef onze Herfstbok"
  tapsense coupons preview 1          which venues, how far, how many codes
  tapsense coupons launch 1           issue the codes
  tapsense coupons sheet cafe-dom 1 -o coupons.pdf --language nl
  tapsense coupons redeem cafe-dom 7KQ2M-X4D9B-N3FR
  tapsense coupons results 1          issued, redeemed, and the uplift in the beer's pours
"""


def _ms(text: str) -> int:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the offset too (2026-10-01T00:00+02:00)")
    return int(when.timestamp() * 1000)


def _campaign(db: Session, campaign_id: int) -> Campaign:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def cmd_festival(settings: Settings, args: argparse.Namespace) -> None:
    body = FestivalIn(name=args.name, latitude=args.lat, longitude=args.lon,
                      starts_ms=args.starts, ends_ms=args.ends, beer_ids=args.beer)  # fmt: skip
    with _session(settings) as db:
        festival = store.create_festival(db, _organisation(db, args.org).id, body, now_ms())
        print(f"festival {festival.id}: {festival.name}")


def cmd_campaign(settings: Settings, args: argparse.Namespace) -> None:
    body = CampaignIn.model_validate({
        "festival_id": args.festival, "beer_id": args.beer, "radius_km": args.radius_km,
        "region": args.region, "codes_per_venue": args.codes, "valid_from_ms": args.valid_from,
        "valid_until_ms": args.valid_until,
        "message": {"en": args.message_en, "nl": args.message_nl}})  # fmt: skip
    with _session(settings) as db:
        campaign = store.create_campaign(db, _organisation(db, args.org).id, body, now_ms())
        print(f"campaign {campaign.id} (draft): `tapsense coupons preview {campaign.id}`, then "
              f"`tapsense coupons launch {campaign.id}`")  # fmt: skip


def cmd_preview(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        campaign = _campaign(db, args.campaign)
        reached = store.reach(db, campaign)
        for r in reached:
            print(f"{r.venue:<24} {r.distance_km:7.2f} km  {campaign.codes_per_venue} codes  "
                  f"{r.name}")  # fmt: skip
        print(f"{len(reached)} venues, {len(reached) * campaign.codes_per_venue} codes")


def cmd_launch(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        issued = store.launch(db, _campaign(db, args.campaign), now_ms())
        print(f"campaign {args.campaign} launched: {issued} codes issued")


def cmd_sheet(settings: Settings, args: argparse.Namespace) -> None:
    from coupons import sheet  # PDF libraries load only where a PDF is made

    with _session(settings) as db:
        venue = _venue(db, args.venue)
        made = store.sheet_for(db, venue, _campaign(db, args.campaign), args.language)
        args.output.write_bytes(sheet.to_pdf(made, args.language))
        print(f"{args.output}: {len(made.codes)} coupons of {venue.id}")


def cmd_redeem(settings: Settings, args: argparse.Namespace) -> None:
    # Serialised on SQLite, as the API's redemptions: racing redemptions queue, not fail.
    engine = engine_for(settings.registry_url, serialised=True)
    refused: Refused | None = None
    try:
        with transaction(engine) as db:  # a refusal's count toward the lockout is kept too
            try:
                done = store.redeem(db, args.code, args.venue, "cli", now_ms())
            except Refused as exc:
                refused = exc
    finally:
        engine.dispose()
    if refused is not None:
        raise AccessError(f"{refused.kind}: {refused}")
    print(f"redeemed {codes.shown(done.code)} at {done.venue_id}")


def cmd_results(settings: Settings, args: argparse.Namespace) -> None:
    from coupons import results  # NumPy and the time series load only for results

    influx = InfluxQL(settings.influx)
    try:
        with _session(settings) as db:
            found = results.results(db, influx, _campaign(db, args.campaign), now_ms(),
                                    args.weeks_before)  # fmt: skip
    finally:
        influx.close()
    for venue, issued in found.issued.items():
        redeemed = sum(d.redeemed for d in found.redeemed if d.venue == venue)
        print(f"{venue:<24} issued {issued:5d}  redeemed {redeemed:5d}")
    u = found.uplift
    if u.litres_per_day is None:
        print(f"uplift: {u.reason}")
    else:
        print(f"uplift: {u.litres_per_day:+.2f} l a day per targeted venue "
              f"(95% interval {u.low:+.2f} to {u.high:+.2f}; {u.targeted} targeted, "
              f"{u.comparable} comparable venues)")  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    command = command_group(
        sub, "coupons", "festival campaigns: create, preview, launch, sheets, redeem, results",
        __doc__, EPILOG, refusals=(InfluxError, codes.CodeError),
    )  # fmt: skip
    festival = command("festival", cmd_festival, "a festival and the beers poured there")
    festival.add_argument("--org", required=True, help="organisation name or id")
    festival.add_argument("--name", required=True)
    festival.add_argument("--lat", type=float, required=True)
    festival.add_argument("--lon", type=float, required=True)
    festival.add_argument("--from", dest="starts", type=_ms, required=True,
                          help="ISO time with offset")  # fmt: skip
    festival.add_argument("--to", dest="ends", type=_ms, required=True)
    festival.add_argument("--beer", type=int, action="append", required=True,
                          help="a beer id poured there (repeat for more)")  # fmt: skip
    campaign = command("campaign", cmd_campaign, "a draft campaign for one beer of a festival")
    campaign.add_argument("--org", required=True)
    campaign.add_argument("--festival", type=int, required=True)
    campaign.add_argument("--beer", type=int, required=True)
    reach = campaign.add_mutually_exclusive_group(required=True)
    reach.add_argument("--radius-km", type=float, help="venues within this of the festival")
    reach.add_argument("--region", help="or the venues of a region")
    campaign.add_argument("--codes", type=int, default=50, help="codes per venue (50)")
    campaign.add_argument("--from", dest="valid_from", type=_ms, required=True)
    campaign.add_argument("--until", dest="valid_until", type=_ms, required=True)
    campaign.add_argument("--message-en", required=True, help="what guests read, in English")
    campaign.add_argument("--message-nl", required=True, help="and in Dutch")
    for name, handler, text in (("preview", cmd_preview, "which venues and codes, no change"),
                                ("launch", cmd_launch, "issue the codes")):  # fmt: skip
        command(name, handler, text).add_argument("campaign", type=int)
    sheet_cmd = command("sheet", cmd_sheet, "a venue's unused codes as printable A4 cards")
    sheet_cmd.add_argument("venue")
    sheet_cmd.add_argument("campaign", type=int)
    sheet_cmd.add_argument("-o", "--output", type=Path, required=True)
    sheet_cmd.add_argument("--language", choices=LANGUAGES, default="nl")
    redeem = command("redeem", cmd_redeem, "redeem a guest's code at a venue")
    redeem.add_argument("venue")
    redeem.add_argument("code")
    found = command("results", cmd_results, "issued, redeemed, and the uplift")
    found.add_argument("campaign", type=int)
    found.add_argument("--weeks-before", type=int, default=4, help="the base period (4)")
