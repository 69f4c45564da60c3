"""The venue's display: the tasting coupons it may hand out now (each running campaign's unused
codes), published retained on its MQTT downlink (`edge.wire.coupons_topic`) by the alerts
service, which already keeps the venue displays. Read here, published there."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.outbox import venue_language
from coupons import codes
from coupons.store import LAUNCHED
from edge.wire import DisplayCampaign, VenueCoupons
from registry.coupon_models import Campaign, Coupon, Festival
from registry.models import Beer, Venue
from texts import DEFAULT_LANGUAGE


def newest_change(db: Session) -> int:
    """When coupons last changed anywhere: the newest launch or redemption (ms; 0: none)."""
    launched = db.scalar(select(func.max(Campaign.launched_ms))) or 0
    redeemed = db.scalar(select(func.max(Coupon.redeemed_ms))) or 0
    return max(launched, redeemed)


def venues_with_coupons(db: Session) -> list[str]:
    return list(db.scalars(select(Coupon.venue_id).distinct().order_by(Coupon.venue_id)))


def state_of(db: Session, venue_id: str, as_of: int, now_ms: int) -> VenueCoupons | None:
    venue = db.get(Venue, venue_id)
    if venue is None:
        return None
    language = venue_language(db, venue)
    running = db.scalars(
        select(Campaign).join(Coupon, Coupon.campaign_id == Campaign.id)
        .where(Coupon.venue_id == venue_id, Campaign.state == LAUNCHED,
               Campaign.valid_from_ms <= now_ms, Campaign.valid_until_ms > now_ms)
        .distinct().order_by(Campaign.id)
    )  # fmt: skip
    shown = []
    for campaign in running:
        unused = db.scalars(select(Coupon.code).where(
            Coupon.campaign_id == campaign.id, Coupon.venue_id == venue_id,
            Coupon.redeemed_ms.is_(None)).order_by(Coupon.issued_ms, Coupon.code))  # fmt: skip
        message = campaign.message.get(language) or campaign.message.get(DEFAULT_LANGUAGE, "")
        shown.append(DisplayCampaign(
            campaign=campaign.id, beer=db.get_one(Beer, campaign.beer_id).name,
            festival=db.get_one(Festival, campaign.festival_id).name, message=str(message),
            valid_until_ms=campaign.valid_until_ms,
            codes=[codes.shown(code) for code in unused]))  # fmt: skip
    return VenueCoupons(v=1, as_of=as_of, language=language, campaigns=shown)
