"""Devices: covering indexes for the kitchens' camera passes and the uptime chart (issue 17).

Revision ID: 0017_devices_camera_indexes
Revises: 0016_devices_outage_index
"""

from alembic import op

revision = "0017_devices_camera_indexes"
down_revision = "0016_devices_outage_index"
branch_labels = None
depends_on = None

CAMERAS = ["site_id", "kind", "active", "created_at", "gb_id", "sip_parent", "id"]


def upgrade() -> None:
    op.create_index("ix_devices_site_cameras", "devices", CAMERAS)
    op.create_index("ix_devices_active_created", "devices", ["active", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_devices_active_created", table_name="devices")
    op.drop_index("ix_devices_site_cameras", table_name="devices")
