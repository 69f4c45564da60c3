"""Keg changes ingest inferred from pours well past an empty keg, marked as such so that staff
can see and correct them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keg_changes") as table:
        table.add_column(
            sa.Column("inferred", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("keg_changes") as table:
        table.drop_column("inferred")
