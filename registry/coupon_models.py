"""The coupons' part of the registry schema: festivals, campaigns, the codes issued to venues,
and failed redemption attempts per key and venue (the lockout that stops guessing).

Redeeming is one conditional update of a coupon's row (`redeemed_ms IS NULL`, at its venue,
within its campaign's window): however many requests race for one code, one row changes once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import ID_LENGTH, Base

CODE_LENGTH = 14  # coupons.codes.LENGTH


class Festival(Base):
    __tablename__ = "festivals"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    latitude: Mapped[float]
    longitude: Mapped[float]
    starts_ms: Mapped[int]
    ends_ms: Mapped[int]
    beer_ids: Mapped[list[int]] = mapped_column(JSON)  # the beers poured there
    created_ms: Mapped[int]


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    festival_id: Mapped[int] = mapped_column(ForeignKey("festivals.id", ondelete="CASCADE"))
    beer_id: Mapped[int] = mapped_column(ForeignKey("beers.id"))
    radius_km: Mapped[float | None]  # venues within this of the festival ...
    region: Mapped[str | None] = mapped_column(String(100))  # ... or those of a region
    codes_per_venue: Mapped[int]
    valid_from_ms: Mapped[int]
    valid_until_ms: Mapped[int]
    message: Mapped[dict[str, Any]] = mapped_column(JSON)  # language -> text for the guest
    state: Mapped[str] = mapped_column(String(16))  # draft | launched
    created_ms: Mapped[int]
    launched_ms: Mapped[int | None]


class Coupon(Base):
    __tablename__ = "coupons"
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    venue_id: Mapped[str] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"))
    issued_ms: Mapped[int]
    redeemed_ms: Mapped[int | None]
    redeemed_by: Mapped[str | None] = mapped_column(Text)  # the key that redeemed it
    __table_args__ = (
        Index("ix_coupons_campaign_venue", "campaign_id", "venue_id"),
        Index("ix_coupons_venue_id", "venue_id"),
        # The alerts service asks for the newest redemption at every tick (the displays).
        Index("ix_coupons_redeemed_ms", "redeemed_ms"),
    )


class RedemptionFailures(Base):
    """Failed attempts of one API key at one venue in the current window, and the lockout."""

    __tablename__ = "redemption_failures"
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    venue_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    window_start_ms: Mapped[int]
    failures: Mapped[int]
    locked_until_ms: Mapped[int | None]


class CouponDelivery(Base):
    """A launched campaign's codes on their way to a venue's owner: the sheet by e-mail, sent
    once (claimed before sending, like a monthly report's e-mail)."""

    __tablename__ = "coupon_deliveries"
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    venue_id: Mapped[str] = mapped_column(
        ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True
    )
    email_to: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    emailed_ms: Mapped[int | None]
    email_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_email_ms: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
