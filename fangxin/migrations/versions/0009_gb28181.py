"""GB/T 28181 door: devices get a 国标编码, a Digest HA1, a parent NVR and a registration.

Revision ID: 0009_gb28181
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

import fangxin.db

UTC = fangxin.db.UTCDateTime(timezone=True)

revision = "0009_gb28181"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("gb_id", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("sip_ha1", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("sip_parent", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("sip_contact", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("sip_expires_at", UTC, nullable=True))
        batch.create_unique_constraint(batch.f("uq_devices_gb_id"), ["gb_id"])
        batch.create_index(batch.f("ix_devices_sip_parent"), ["sip_parent"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_index(batch.f("ix_devices_sip_parent"))
        batch.drop_constraint(batch.f("uq_devices_gb_id"), type_="unique")
        batch.drop_column("sip_expires_at")
        batch.drop_column("sip_contact")
        batch.drop_column("sip_parent")
        batch.drop_column("sip_ha1")
        batch.drop_column("gb_id")
