"""Festival coupons: an operator of the brewer's organisation creates festivals and campaigns,
previews which venues a campaign reaches and launches it (the codes are issued); an owner sees
their venues' codes and their staff redeem them at the bar.

Redemption answers with a problem that says why a code did not redeem (`reason`): mistyped
(422), unknown (404), another venue's (403), used already, with when and where (409), not yet
valid (409), expired (410), or too many failed attempts by this key here (429, Retry-After).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.outbox import venue_language
from api import problems
from api.deps import Db, InfluxDep, Operator, Person, VisibleVenue
from api.problems import PROBLEM_RESPONSES
from api.schemas import RowId
from coupons import codes, results, sheet, store
from coupons.store import CampaignIn, FestivalIn, Messages, RedeemIn, Refused
from registry import access
from registry.coupon_models import Campaign, Festival
from texts import LANGUAGES
from timeseries.influx import InfluxError

router = APIRouter(tags=["coupons"], responses=PROBLEM_RESPONSES)

STATUS = {"mistyped": 422, "unknown": 404, "foreign": 403, "used": 409, "not_yet_valid": 409,
          "expired": 410, "locked": 429}  # fmt: skip
TITLE = {"mistyped": "Mistyped code", "unknown": "Unknown code", "foreign": "Another venue's code",
         "used": "Used already", "not_yet_valid": "Not valid yet", "expired": "Expired",
         "locked": "Too many failed attempts"}  # fmt: skip


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FestivalOut(_Out):
    id: int
    name: str
    latitude: float
    longitude: float
    starts_ms: int
    ends_ms: int
    beer_ids: list[int]


class CampaignOut(_Out):
    id: int
    festival_id: int
    beer_id: int
    radius_km: float | None
    region: str | None
    codes_per_venue: int
    valid_from_ms: int
    valid_until_ms: int
    message: Messages
    state: str = Field(description="draft | launched")
    launched_ms: int | None


class ReachedVenue(BaseModel):
    venue: str
    name: str
    distance_km: float = Field(description="from the festival, great-circle")
    codes: int


class Preview(BaseModel):
    venues: list[ReachedVenue] = Field(description="nearest the festival first")
    codes: int = Field(description="codes the launch issues")


class Launched(BaseModel):
    issued: int


class CouponOut(_Out):
    code: str = Field(description="as printed: 7KQ2M-X4D9B-N3FR")
    campaign_id: int
    issued_ms: int
    redeemed_ms: int | None


class RedemptionOut(BaseModel):
    code: str
    campaign_id: int
    venue: str
    redeemed_ms: int


def _serial_session(request: Request) -> Session:
    """Redemption's own session: on SQLite its transaction takes the write lock as it begins,
    so racing requests queue instead of failing (PostgreSQL locks the coupon's row)."""
    return request.app.state.serial_sessions()  # type: ignore[no-any-return]


def _campaign(db: Db, who: Person, campaign_id: Annotated[RowId, Path()]) -> Campaign:
    return store.campaign_of(db, who.organisation_id, campaign_id)


VisibleCampaign = Annotated[Campaign, Depends(_campaign)]


@router.post("/festivals", response_model=FestivalOut, status_code=201)
def create_festival(db: Db, who: Operator, body: FestivalIn) -> FestivalOut:
    """Operators only: a festival and the organisation's beers poured there."""
    festival = store.create_festival(db, who.organisation_id, body, access.now_ms())
    db.commit()
    return FestivalOut.model_validate(festival)


@router.get("/festivals", response_model=list[FestivalOut])
def list_festivals(db: Db, who: Person) -> list[FestivalOut]:
    rows = db.scalars(select(Festival).where(Festival.organisation_id == who.organisation_id)
                      .order_by(Festival.starts_ms.desc()))  # fmt: skip
    return [FestivalOut.model_validate(f) for f in rows]


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
def create_campaign(db: Db, who: Operator, body: CampaignIn) -> CampaignOut:
    """Operators only: a draft; preview it, then launch it."""
    campaign = store.create_campaign(db, who.organisation_id, body, access.now_ms())
    db.commit()
    return CampaignOut.model_validate(campaign)


@router.get("/campaigns", response_model=list[CampaignOut])
def list_campaigns(db: Db, who: Person) -> list[CampaignOut]:
    rows = db.scalars(select(Campaign).where(Campaign.organisation_id == who.organisation_id)
                      .order_by(Campaign.id.desc()))  # fmt: skip
    return [CampaignOut.model_validate(c) for c in rows]


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign: VisibleCampaign) -> CampaignOut:
    return CampaignOut.model_validate(campaign)


@router.get("/campaigns/{campaign_id}/preview", response_model=Preview)
def preview_campaign(db: Db, who: Operator, campaign: VisibleCampaign) -> Preview:
    """Which venues the campaign reaches, how far from the festival, and how many codes."""
    each = campaign.codes_per_venue
    venues = [ReachedVenue(venue=r.venue, name=r.name, distance_km=round(r.distance_km, 2),
                           codes=each) for r in store.reach(db, campaign)]  # fmt: skip
    return Preview(venues=venues, codes=sum(v.codes for v in venues))


@router.post("/campaigns/{campaign_id}/launch", response_model=Launched)
def launch_campaign(db: Db, who: Operator, campaign: VisibleCampaign) -> Launched:
    """Operators only: issue the codes to the venues reached (once; 422 if launched)."""
    issued = store.launch(db, campaign, access.now_ms())
    db.commit()
    return Launched(issued=issued)


class VenueDayOut(BaseModel):
    venue: str
    day: str = Field(description="the venue's local date")
    redeemed: int


class VenueRatesOut(BaseModel):
    venue: str
    targeted: bool
    before_l_per_day: float
    during_l_per_day: float


class UpliftOut(BaseModel):
    targeted: int = Field(description="venues reached that poured the beer before and during")
    comparable: int = Field(description="untargeted venues that poured it in both periods")
    litres_per_day: float | None = Field(description="what the campaign added per targeted "
                                         "venue a day (difference in differences)")  # fmt: skip
    low: float | None = Field(description="95% bootstrap interval over venues")
    high: float | None
    share: float | None = Field(description="of the targeted venues' rate before")
    reason: str | None = Field(description="why there is no estimate")


class ResultsOut(BaseModel):
    issued: dict[str, int] = Field(description="codes per venue")
    redeemed: list[VenueDayOut]
    uplift: UpliftOut
    venues: list[VenueRatesOut]


@router.get("/campaigns/{campaign_id}/results", response_model=ResultsOut)
def campaign_results(
    db: Db, who: Operator, influx: InfluxDep, campaign: VisibleCampaign,
    weeks_before: Annotated[int, Query(ge=1, le=26, description="the base period")] = 4,
) -> ResultsOut:  # fmt: skip
    """Operators only: codes issued and redeemed per venue and day, and the uplift in the
    campaign beer's pours at the venues reached against the organisation's others that pour
    it (up to now while the campaign runs)."""
    try:
        found = results.results(db, influx, campaign, access.now_ms(), weeks_before)
    except InfluxError as exc:
        raise access.Unavailable(f"InfluxDB: {exc}") from exc
    return ResultsOut(
        issued=found.issued,
        redeemed=[VenueDayOut(venue=d.venue, day=d.day, redeemed=d.redeemed)
                  for d in found.redeemed],
        uplift=UpliftOut(**dataclasses.asdict(found.uplift)),
        venues=[VenueRatesOut(**dataclasses.asdict(r)) for r in found.rates],
    )  # fmt: skip


@router.get("/venues/{venue}/coupons", response_model=list[CouponOut])
def list_coupons(
    db: Db, venue: VisibleVenue, campaign_id: Annotated[RowId | None, Query()] = None
) -> list[CouponOut]:
    """The venue's codes, to hand to guests."""
    return [CouponOut(code=codes.shown(c.code), campaign_id=c.campaign_id, issued_ms=c.issued_ms,
                      redeemed_ms=c.redeemed_ms)
            for c in store.coupons_of(db, venue.id, campaign_id)]  # fmt: skip


@router.get(
    "/venues/{venue}/coupons/sheet",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "A4 coupon cards"}},
)
def coupon_sheet(
    db: Db, who: Person, venue: VisibleVenue, campaign_id: Annotated[RowId, Query()],
    language: Annotated[Literal[LANGUAGES] | None, Query()] = None,  # type: ignore[valid-type]
) -> Response:  # fmt: skip
    """The venue's unused codes of a campaign as printable A4 cards with a QR code each, in
    the owner's language unless `language` says otherwise."""
    campaign = store.campaign_of(db, who.organisation_id, campaign_id)
    chosen = language or venue_language(db, venue)
    pdf = sheet.to_pdf(store.sheet_for(db, venue, campaign, chosen), chosen)
    filename = f"coupons-{venue.id}-{campaign.id}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})  # fmt: skip


@router.post(
    "/venues/{venue}/redemptions",
    response_model=RedemptionOut,
    responses={410: PROBLEM_RESPONSES[409] | {"description": "Expired"},
               429: PROBLEM_RESPONSES[409] | {"description": "Too many failed attempts"}},
)  # fmt: skip
def redeem(
    request: Request, who: Person, venue: VisibleVenue, body: RedeemIn
) -> RedemptionOut | JSONResponse:
    """Redeem a guest's code at this venue, once. Case, spaces and dashes do not matter."""
    db = _serial_session(request)
    try:
        try:
            done = store.redeem(db, body.code, venue.id, who.key_id or "?", access.now_ms())
        except Refused as refused:
            db.commit()  # the failure counts toward the lockout
            headers = ({"Retry-After": str(math.ceil(refused.retry_after_s))}
                       if refused.retry_after_s is not None else None)  # fmt: skip
            return problems.problem(STATUS[refused.kind], TITLE[refused.kind], str(refused),
                                    headers=headers, reason=refused.kind,
                                    redeemed_ms=refused.redeemed_ms,
                                    redeemed_at=refused.redeemed_at)  # fmt: skip
        db.commit()
    finally:
        db.close()
    return RedemptionOut(code=codes.shown(done.code), campaign_id=done.campaign_id,
                         venue=done.venue_id, redeemed_ms=done.redeemed_ms)  # fmt: skip
