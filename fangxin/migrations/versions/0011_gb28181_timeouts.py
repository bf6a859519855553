"""Per-device missed-beats count (最大心跳超时次数); observed runs name their door.

Revision ID: 0011_gb28181_timeouts
Revises: 0010_security
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_gb28181_timeouts"
down_revision = "0010_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("missed_beats", sa.Integer(), server_default="3", nullable=False))
    with op.batch_alter_table("ingester_runs") as batch:
        batch.add_column(sa.Column("door", sa.String(length=8), server_default="mqtt", nullable=False))
    # The gateway's runs so far carry its default client id.
    op.execute("UPDATE ingester_runs SET door = 'sip' WHERE client_id LIKE 'fangxin-sip-%'")


def downgrade() -> None:
    with op.batch_alter_table("ingester_runs") as batch:
        batch.drop_column("door")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("missed_beats")
