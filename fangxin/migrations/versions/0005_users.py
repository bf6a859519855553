"""Dashboard login accounts.

Revision ID: 0005
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import fangxin.db

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=True),
        sa.Column("created_at", fangxin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", fangxin.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )


def downgrade() -> None:
    op.drop_table("users")
