"""Trust boundaries (issue 11): session versions of accounts, attributable scans.

Revision ID: 0010_security
Revises: 0009_gb28181
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_security"
down_revision = "0009_gb28181"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("certificate_scans") as batch:
        batch.add_column(
            sa.Column("signed_in", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("certificate_scans") as batch:
        batch.drop_column("signed_in")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
