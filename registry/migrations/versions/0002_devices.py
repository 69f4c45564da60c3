"""Edge devices with MQTT credentials and device API keys; keg changes and line cleanings.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tap_event_table(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("id", INT, nullable=False),
        sa.Column("venue_id", sa.String(64), nullable=False),
        sa.Column("tap_id", sa.String(64), nullable=False),
        *columns,
        sa.Column("at_ms", INT, nullable=False),
        sa.ForeignKeyConstraint(
            ["venue_id", "tap_id"],
            ["taps.venue_id", "taps.id"],
            name=op.f(f"fk_{name}_venue_id_taps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_venue_id"), name, ["venue_id"])


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("venue_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_ms", INT, nullable=False),
        sa.Column("revoked_ms", INT, nullable=True),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venues.id"], name=op.f("fk_devices_venue_id_venues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("venue_id", "id", name=op.f("pk_devices")),
    )
    _tap_event_table(
        "keg_changes",
        sa.Column("keg_l", sa.Double(), nullable=False),
        sa.Column(
            "beer_id",
            INT,
            sa.ForeignKey("beers.id", name=op.f("fk_keg_changes_beer_id_beers")),
            nullable=True,
        ),
    )
    _tap_event_table("line_cleanings")
    op.create_table(
        "mqtt_credentials",
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("venue_id", sa.String(64), nullable=True),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("service", sa.String(32), nullable=True),
        sa.Column("created_ms", INT, nullable=False),
        sa.Column("revoked_ms", INT, nullable=True),
        sa.ForeignKeyConstraint(
            ["venue_id", "device_id"],
            ["devices.venue_id", "devices.id"],
            name="fk_mqtt_credentials_device",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_mqtt_credentials")),
    )
    # Device keys: SQLite cannot add a foreign key in place, so batch mode copies the table.
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("venue_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("device_id", sa.String(64), nullable=True))
        batch.create_foreign_key(
            "fk_api_keys_device", "devices", ["venue_id", "device_id"], ["venue_id", "id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("fk_api_keys_device", type_="foreignkey")
        batch.drop_column("device_id")
        batch.drop_column("venue_id")
    for table in ("mqtt_credentials", "line_cleanings", "keg_changes", "devices"):
        op.drop_table(table)
