"""Trust boundaries (issue 11): session versions, attributable scans, counted refusals.

Revision ID: 0010_security
Revises: 0009_gb28181
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_security"
down_revision = "0009_gb28181"
branch_labels = None
depends_on = None

# Every column but `attempts`: an UPDATE may only count one more refusal on a 401/429 row.
_FIXED = (
    "id at key_id key_prefix role username method path endpoint status object_id client request_id"
).split()
_OLD_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""


def _counting(same: str) -> str:
    fixed = " AND ".join(same.format(c=c) for c in _FIXED)
    return f"OLD.status IN (401, 429) AND NEW.attempts > OLD.attempts AND {fixed}"


def _pg_function() -> str:
    allowed = _counting("NEW.{c} IS NOT DISTINCT FROM OLD.{c}")
    return f"""
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND {allowed} THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""


def _sqlite_update_trigger(when: str) -> str:
    return (
        f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log {when}"
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    )


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("certificate_scans") as batch:
        batch.add_column(
            sa.Column("signed_in", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.add_column(
        "audit_log", sa.Column("attempts", sa.Integer(), server_default="1", nullable=False)
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_pg_function())
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute(_sqlite_update_trigger(f"WHEN NOT ({_counting('NEW.{c} IS OLD.{c}')}) "))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_OLD_PG_FUNCTION)
        op.drop_column("audit_log", "attempts")
    else:  # SQLite (3.35+) drops the column in place, once no trigger names it
        op.execute("DROP TRIGGER audit_log_no_update")
        op.drop_column("audit_log", "attempts")
        op.execute(_sqlite_update_trigger(""))
    with op.batch_alter_table("certificate_scans") as batch:
        batch.drop_column("signed_in")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
