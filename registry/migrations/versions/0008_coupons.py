"""Coupons: festivals, campaigns, the codes issued to venues, failed redemption attempts, and
the sheets e-mailed to owners.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "festivals",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("starts_ms", ID, nullable=False),
        sa.Column("ends_ms", ID, nullable=False),
        sa.Column("beer_ids", sa.JSON(), nullable=False),
        sa.Column("created_ms", ID, nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_festivals_organisation_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_festivals")),
    )  # fmt: skip
    op.create_index(op.f("ix_festivals_organisation_id"), "festivals", ["organisation_id"])
    op.create_table(
        "campaigns",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("festival_id", ID, nullable=False),
        sa.Column("beer_id", ID, nullable=False),
        sa.Column("radius_km", sa.Double(), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("codes_per_venue", ID, nullable=False),
        sa.Column("valid_from_ms", ID, nullable=False),
        sa.Column("valid_until_ms", ID, nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_ms", ID, nullable=False),
        sa.Column("launched_ms", ID, nullable=True),
        sa.ForeignKeyConstraint(["beer_id"], ["beers.id"], name=op.f("fk_campaigns_beer_id_beers")),
        sa.ForeignKeyConstraint(["festival_id"], ["festivals.id"],
                                name=op.f("fk_campaigns_festival_id_festivals"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_campaigns_organisation_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )  # fmt: skip
    op.create_index(op.f("ix_campaigns_organisation_id"), "campaigns", ["organisation_id"])
    op.create_table(
        "coupons",
        sa.Column("code", sa.String(length=14), nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("venue_id", sa.String(length=64), nullable=False),
        sa.Column("issued_ms", ID, nullable=False),
        sa.Column("redeemed_ms", ID, nullable=True),
        sa.Column("redeemed_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_coupons_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["venue_id"], ["venues.id"],
                                name=op.f("fk_coupons_venue_id_venues"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_coupons")),
    )  # fmt: skip
    op.create_index("ix_coupons_campaign_venue", "coupons", ["campaign_id", "venue_id"])
    op.create_index("ix_coupons_venue_id", "coupons", ["venue_id"])
    op.create_index("ix_coupons_redeemed_ms", "coupons", ["redeemed_ms"])
    op.create_table(
        "redemption_failures",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("venue_id", sa.String(length=64), nullable=False),
        sa.Column("window_start_ms", ID, nullable=False),
        sa.Column("failures", ID, nullable=False),
        sa.Column("locked_until_ms", ID, nullable=True),
        sa.PrimaryKeyConstraint("key_id", "venue_id", name=op.f("pk_redemption_failures")),
    )
    op.create_table(
        "coupon_deliveries",
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("venue_id", sa.String(length=64), nullable=False),
        sa.Column("email_to", sa.String(length=254), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("emailed_ms", ID, nullable=True),
        sa.Column("email_attempts", ID, server_default="0", nullable=False),
        sa.Column("next_email_ms", ID, nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_coupon_deliveries_campaign_id_campaigns"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["venue_id"], ["venues.id"],
                                name=op.f("fk_coupon_deliveries_venue_id_venues"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "venue_id", name=op.f("pk_coupon_deliveries")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("coupon_deliveries")
    op.drop_table("redemption_failures")
    op.drop_index("ix_coupons_redeemed_ms", table_name="coupons")
    op.drop_index("ix_coupons_venue_id", table_name="coupons")
    op.drop_index("ix_coupons_campaign_venue", table_name="coupons")
    op.drop_table("coupons")
    op.drop_index(op.f("ix_campaigns_organisation_id"), table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_index(op.f("ix_festivals_organisation_id"), table_name="festivals")
    op.drop_table("festivals")
