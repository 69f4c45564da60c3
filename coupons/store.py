"""Festivals, campaigns and coupons in the registry's database: what an operator of a brewer
creates, previews and launches, and what a venue's staff redeem at the bar.

Redemption is one conditional update (`redeemed_ms IS NULL`, at its venue, within its
campaign's window), never a read then a write: of 50 requests racing for a code, one changes
its row and the others are told it was used, when and where. A key that fails too often at a
venue (mistyped, unknown or another venue's codes) is locked out there for a while: guessing
65-bit codes is hopeless, and the lockout makes it slow as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Result, case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts.outbox import owner_contact
from coupons import codes
from coupons.geo import Place, Reached, reached
from coupons.sheet import Sheet
from registry.access import Invalid, NotFound
from registry.coupon_models import (
    Campaign,
    Coupon,
    CouponDelivery,
    Festival,
    RedemptionFailures,
)
from registry.inputs import RowId, Text, TimeMs
from registry.models import Beer, Venue

DRAFT, LAUNCHED = "draft", "launched"
# A guest's message may break lines (\n), nothing else of the control characters.
_MESSAGE = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]+$"
MessageText = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=_MESSAGE)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FestivalIn(_In):
    name: Text
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    starts_ms: TimeMs
    ends_ms: TimeMs
    beer_ids: list[RowId] = Field(min_length=1, max_length=100, description="beers poured there")

    @model_validator(mode="after")
    def _ends_after_start(self) -> FestivalIn:
        if self.ends_ms <= self.starts_ms:
            raise ValueError("a festival ends after it starts")
        return self


class Messages(_In):
    en: MessageText
    nl: MessageText


class CampaignIn(_In):
    festival_id: RowId
    beer_id: RowId
    radius_km: Annotated[float, Field(gt=0, le=500)] | None = Field(
        None, description="venues within this distance of the festival (or give `region`)"
    )
    region: Text | None = Field(None, description="the venues of this region (or `radius_km`)")
    codes_per_venue: Annotated[int, Field(ge=1, le=1000)] = 50
    valid_from_ms: TimeMs
    valid_until_ms: TimeMs
    message: Messages = Field(description="what the guest reads on the coupon, in en and nl")

    @model_validator(mode="after")
    def _one_reach_and_a_window(self) -> CampaignIn:
        if (self.radius_km is None) == (self.region is None):
            raise ValueError("give radius_km or region, not both")
        if self.valid_until_ms <= self.valid_from_ms:
            raise ValueError("valid_until_ms must come after valid_from_ms")
        return self


class RedeemIn(_In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=100)]


def create_festival(db: Session, organisation_id: int, body: FestivalIn, now_ms: int) -> Festival:
    _own_beers(db, organisation_id, body.beer_ids)
    festival = Festival(organisation_id=organisation_id, created_ms=now_ms, **body.model_dump())
    db.add(festival)
    db.flush()
    return festival


def _own_beers(db: Session, organisation_id: int, beer_ids: list[int]) -> None:
    own = select(Beer.id).where(Beer.id.in_(beer_ids), Beer.organisation_id == organisation_id)
    found = set(db.scalars(own))
    missing = sorted(set(beer_ids) - found)
    if missing:
        raise Invalid(f"no beer {missing[0]} in your organisation")


def create_campaign(db: Session, organisation_id: int, body: CampaignIn, now_ms: int) -> Campaign:
    festival = db.get(Festival, body.festival_id)
    if festival is None or festival.organisation_id != organisation_id:
        raise Invalid(f"no festival {body.festival_id} in your organisation")
    if body.beer_id not in festival.beer_ids:
        raise Invalid(f"beer {body.beer_id} is not poured at {festival.name!r}")
    fields = body.model_dump()
    campaign = Campaign(organisation_id=organisation_id, state=DRAFT, created_ms=now_ms,
                        **{**fields, "message": body.message.model_dump()})  # fmt: skip
    db.add(campaign)
    db.flush()
    return campaign


def reach(db: Session, campaign: Campaign) -> list[Reached]:
    """The organisation's venues the campaign reaches, nearest the festival first."""
    festival = db.get_one(Festival, campaign.festival_id)
    venues = db.scalars(select(Venue).where(Venue.organisation_id == campaign.organisation_id))
    places = [Place(v.id, v.name, v.latitude, v.longitude, v.region) for v in venues]
    return reached(places, festival.latitude, festival.longitude, radius_km=campaign.radius_km,
                   region=campaign.region)  # fmt: skip


def launch(db: Session, campaign: Campaign, now_ms: int) -> int:
    """Issue the codes (codes_per_venue to each venue reached), and queue each sheet for its
    venue's owner; how many codes. A launched campaign is not launched again: the state
    changes by a conditional update first."""
    if campaign.valid_until_ms <= now_ms:
        raise Invalid(f"campaign {campaign.id}'s window has ended: no code could be redeemed")
    changed: Result[tuple[()]] = db.execute(
        update(Campaign).where(Campaign.id == campaign.id, Campaign.state == DRAFT)
        .values(state=LAUNCHED, launched_ms=now_ms)
    )  # fmt: skip
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise Invalid(f"campaign {campaign.id} is launched already")
    issued = 0
    for reached_venue in reach(db, campaign):
        for _ in range(campaign.codes_per_venue):
            db.add(Coupon(code=codes.new_code(), campaign_id=campaign.id,
                          venue_id=reached_venue.venue, issued_ms=now_ms))  # fmt: skip
            issued += 1
        email, language = owner_contact(db, db.get_one(Venue, reached_venue.venue))
        if email is not None:  # the sheet goes to the owner by e-mail (coupons.delivery)
            db.add(CouponDelivery(campaign_id=campaign.id, venue_id=reached_venue.venue,
                                  email_to=email, language=language,
                                  next_email_ms=now_ms))  # fmt: skip
    db.flush()
    db.refresh(campaign)
    return issued


# --- redemption -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lockout:
    """`max_failures` failed attempts by one key at one venue within `window_s` lock it out
    there for `lockout_s`."""

    max_failures: int = 10
    window_s: float = 900.0
    lockout_s: float = 900.0


DEFAULT_LOCKOUT = Lockout()


@dataclass(frozen=True, slots=True)
class Redeemed:
    code: str
    campaign_id: int
    venue_id: str
    redeemed_ms: int


Refusal = Literal["mistyped", "unknown", "foreign", "used", "not_yet_valid", "expired", "locked"]
COUNTED: frozenset[Refusal] = frozenset({"mistyped", "unknown", "foreign"})  # guessing looks so


class Refused(Exception):
    """Why a code was not redeemed, in words for the bar, with what goes with it."""

    def __init__(
        self,
        kind: Refusal,
        message: str,
        *,
        retry_after_s: float | None = None,
        redeemed_ms: int | None = None,
        redeemed_at: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after_s = retry_after_s
        self.redeemed_ms = redeemed_ms
        self.redeemed_at = redeemed_at


def redeem(db: Session, typed: str, venue_id: str, key_id: str, now_ms: int,
           lockout: Lockout = DEFAULT_LOCKOUT) -> Redeemed:  # fmt: skip
    """Redeem a typed code at a venue, or raise `Refused` saying why. The caller commits either
    way: a refusal that counts toward the lockout is written in the same session."""
    _locked(db, key_id, venue_id, now_ms)
    try:
        code = codes.normalise(typed)
    except codes.CodeError as exc:
        raise _failed(db, key_id, venue_id, now_ms, lockout, Refused("mistyped", str(exc))) from exc
    window = select(Campaign.id).where(Campaign.state == LAUNCHED,
                                       Campaign.valid_from_ms <= now_ms,
                                       Campaign.valid_until_ms > now_ms)  # fmt: skip
    changed = db.execute(
        update(Coupon)
        .where(Coupon.code == code, Coupon.venue_id == venue_id, Coupon.redeemed_ms.is_(None),
               Coupon.campaign_id.in_(window))
        .values(redeemed_ms=now_ms, redeemed_by=key_id)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if changed.rowcount == 1:  # type: ignore[attr-defined]
        coupon = db.get_one(Coupon, code, populate_existing=True)
        return Redeemed(code, coupon.campaign_id, venue_id, now_ms)
    raise _failed(db, key_id, venue_id, now_ms, lockout, _why(db, code, venue_id, now_ms))


def _why(db: Session, code: str, venue_id: str, now_ms: int) -> Refused:
    coupon = db.get(Coupon, code, populate_existing=True)
    if coupon is None:
        return Refused("unknown", f"no coupon {codes.shown(code)}")
    if coupon.venue_id != venue_id:
        return Refused("foreign", f"coupon {codes.shown(code)} was issued to another venue")
    if coupon.redeemed_ms is not None:
        venue = db.get(Venue, coupon.venue_id)
        return Refused("used", f"coupon {codes.shown(code)} was used already",
                       redeemed_ms=coupon.redeemed_ms,
                       redeemed_at=venue.name if venue else coupon.venue_id)  # fmt: skip
    campaign = db.get_one(Campaign, coupon.campaign_id)
    if campaign.state != LAUNCHED or now_ms < campaign.valid_from_ms:
        return Refused("not_yet_valid", f"coupon {codes.shown(code)} is not valid yet")
    return Refused("expired", f"coupon {codes.shown(code)} has expired")


def _locked(db: Session, key_id: str, venue_id: str, now_ms: int) -> None:
    row = db.get(RedemptionFailures, (key_id, venue_id))
    if row is not None and row.locked_until_ms is not None and row.locked_until_ms > now_ms:
        wait_s = (row.locked_until_ms - now_ms) / 1000
        raise Refused("locked", f"too many failed attempts at this venue: try again in "
                                f"{wait_s:.0f} s", retry_after_s=wait_s)  # fmt: skip


def _failed(db: Session, key_id: str, venue_id: str, now_ms: int, lockout: Lockout,
            refused: Refused) -> Refused:  # fmt: skip
    """Count the failure if it is one guessing makes; lock the key out at the limit."""
    if refused.kind not in COUNTED:
        return refused
    f = RedemptionFailures
    key = (f.key_id == key_id, f.venue_id == venue_id)
    expired = f.window_start_ms <= now_ms - int(lockout.window_s * 1000)
    # One atomic step: a new window, or one more failure in the current one (every SET sees
    # the row as it was).
    counted = db.execute(
        update(f).where(*key).values(
            failures=case((expired, 1), else_=f.failures + 1),
            window_start_ms=case((expired, now_ms), else_=f.window_start_ms),
            locked_until_ms=case((expired, None), else_=f.locked_until_ms),
        ).execution_options(synchronize_session=False)
    )  # fmt: skip
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        try:
            with db.begin_nested():
                db.add(f(key_id=key_id, venue_id=venue_id, window_start_ms=now_ms, failures=1))
        except IntegrityError:  # another request made the row meanwhile
            db.execute(update(f).where(*key).values(failures=f.failures + 1)
                       .execution_options(synchronize_session=False))  # fmt: skip
    db.execute(
        update(f).where(*key, f.failures >= lockout.max_failures, f.locked_until_ms.is_(None))
        .values(locked_until_ms=now_ms + int(lockout.lockout_s * 1000))
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    return refused


def coupons_of(db: Session, venue_id: str, campaign_id: int | None = None) -> list[Coupon]:
    q = select(Coupon).where(Coupon.venue_id == venue_id)
    if campaign_id is not None:
        q = q.where(Coupon.campaign_id == campaign_id)
    return list(db.scalars(q.order_by(Coupon.campaign_id, Coupon.issued_ms, Coupon.code)))


def campaign_of(db: Session, organisation_id: int, campaign_id: int) -> Campaign:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None or campaign.organisation_id != organisation_id:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def sheet_for(db: Session, venue: Venue, campaign: Campaign, language: str) -> Sheet:
    """The printable sheet of the venue's unredeemed codes of a campaign."""
    festival = db.get_one(Festival, campaign.festival_id)
    beer = db.get_one(Beer, campaign.beer_id)
    unused = [c.code for c in coupons_of(db, venue.id, campaign.id) if c.redeemed_ms is None]
    message = campaign.message.get(language) or campaign.message.get("en", "")
    return Sheet(venue_name=venue.name, beer=beer.name, festival=festival.name,
                 message=str(message), valid_until_ms=campaign.valid_until_ms, codes=unused,
                 timezone=venue.timezone)  # fmt: skip
