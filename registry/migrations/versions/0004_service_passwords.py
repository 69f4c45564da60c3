"""Service logins (ingest, alerts) keep their broker password, so each service can be
restarted alone and an operator can read or rotate it (`tapsense registry service-login`).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mqtt_credentials") as table:
        table.add_column(sa.Column("service_password", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mqtt_credentials") as table:
        table.drop_column("service_password")
