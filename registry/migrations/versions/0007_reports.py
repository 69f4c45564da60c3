"""Reports: a run record per venue and month (with the archived report), a price per litre
per beer.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("venue_id", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("claimed_ms", MS, nullable=False),
        sa.Column("lease_until_ms", MS, nullable=False),
        sa.Column("attempts", MS, nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("generated_ms", MS, nullable=True),
        sa.Column("model", sa.JSON(), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("pdf_language", sa.String(length=8), nullable=True),
        sa.Column("email_to", sa.String(length=254), nullable=True),
        sa.Column("emailed_ms", MS, nullable=True),
        sa.Column("email_attempts", MS, server_default="0", nullable=False),
        sa.Column("next_email_ms", MS, nullable=True),
        sa.ForeignKeyConstraint(
            ["venue_id"],
            ["venues.id"],
            name=op.f("fk_report_runs_venue_id_venues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("venue_id", "month", name=op.f("pk_report_runs")),
    )
    with op.batch_alter_table("beers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price_per_l", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("beers", schema=None) as batch_op:
        batch_op.drop_column("price_per_l")
    op.drop_table("report_runs")
