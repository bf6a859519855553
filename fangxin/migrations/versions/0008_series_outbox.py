"""Outbox of time-series lines written by web processes, relayed to InfluxDB by the ingester.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_outbox")),
    )


def downgrade() -> None:
    op.drop_table("series_outbox")
