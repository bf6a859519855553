"""Merge the devices, rapid-test, certificate and user branches

Revision ID: 0006
Revises: 0002, 0003, 0004, 0005
Create Date: 2026-11-29 09:45:00
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | Sequence[str] | None = ("0002", "0003", "0004", "0005")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Join the branches; no schema change."""


def downgrade() -> None:
    """Split the branches again; no schema change."""
