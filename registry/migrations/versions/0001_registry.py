"""The registry: organisations, users, API keys, beers, venues and taps.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", INT, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    op.create_table(
        "beers",
        sa.Column("id", INT, nullable=False),
        sa.Column("organisation_id", INT, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("style", sa.String(100), nullable=False),
        sa.Column("serving_min_c", sa.Double(), nullable=False),
        sa.Column("serving_max_c", sa.Double(), nullable=False),
        sa.Column("foam_c", sa.Double(), nullable=True),
        sa.Column("created_ms", INT, nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_beers_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_beers")),
        sa.UniqueConstraint("organisation_id", "name", name=op.f("uq_beers_organisation_id")),
    )
    op.create_index(op.f("ix_beers_organisation_id"), "beers", ["organisation_id"])
    op.create_table(
        "users",
        sa.Column("id", INT, nullable=False),
        sa.Column("organisation_id", INT, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_ms", INT, nullable=False),
        sa.Column("disabled_ms", INT, nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_users_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_index(op.f("ix_users_organisation_id"), "users", ["organisation_id"])
    op.create_table(
        "venues",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("organisation_id", INT, nullable=False),
        sa.Column("owner_id", INT, nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=True),
        sa.Column("line_cleaning_days", sa.Double(), nullable=True),
        sa.Column("created_ms", INT, nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_venues_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_venues_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venues")),
    )
    op.create_index(op.f("ix_venues_organisation_id"), "venues", ["organisation_id"])
    op.create_index(op.f("ix_venues_owner_id"), "venues", ["owner_id"])
    op.create_index(op.f("ix_venues_region"), "venues", ["region"])
    op.create_table(
        "taps",
        sa.Column("venue_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("beer_id", INT, nullable=True),
        sa.Column("keg_l", sa.Double(), nullable=False),
        sa.Column("warm_max_c", sa.Double(), nullable=True),
        sa.Column("created_ms", INT, nullable=False),
        sa.ForeignKeyConstraint(["beer_id"], ["beers.id"], name=op.f("fk_taps_beer_id_beers")),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venues.id"], name=op.f("fk_taps_venue_id_venues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("venue_id", "id", name=op.f("pk_taps")),
    )
    op.create_index(op.f("ix_taps_beer_id"), "taps", ["beer_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("user_id", INT, nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_ms", INT, nullable=False),
        sa.Column("revoked_ms", INT, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"])


def downgrade() -> None:
    for table in ("api_keys", "taps", "venues", "users", "beers", "organisations"):
        op.drop_table(table)
