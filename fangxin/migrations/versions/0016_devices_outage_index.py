"""Devices: an index of offline devices by the time they went offline (the overview's inbox).

Revision ID: 0016_devices_outage_index
Revises: 0015_plan_figures
"""

from alembic import op

revision = "0016_devices_outage_index"
down_revision = "0015_plan_figures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_devices_conn_state_since", "devices", ["conn_state", "conn_since", "id"])


def downgrade() -> None:
    op.drop_index("ix_devices_conn_state_since", table_name="devices")
