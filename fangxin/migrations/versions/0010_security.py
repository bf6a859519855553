"""Trust boundaries (issue 11): session versions, attributable scans, audit log hardening.

The audit log stays append-only with two exceptions, both enforced by its trigger: a row
written with status 0 inside a request's transaction gets its HTTP status (and object) once,
and a 401/429 row counts one more attempt. TRUNCATE is refused on PostgreSQL.

Revision ID: 0010_security
Revises: 0009_gb28181
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_security"
down_revision = "0009_gb28181"
branch_labels = None
depends_on = None

# Columns no UPDATE may change.
_FIXED = "id at key_id key_prefix role username method path endpoint client request_id".split()
_OLD_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""


_PG_TRUNCATE = """
CREATE FUNCTION audit_log_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: TRUNCATE refused';
END;
$$ LANGUAGE plpgsql
"""


def _allowed(same: str) -> str:
    fixed = " AND ".join(same.format(c=c) for c in _FIXED)
    unchanged = " AND ".join(same.format(c=c) for c in ("status", "object_id"))
    counting = f"OLD.status IN (401, 429) AND NEW.attempts > OLD.attempts AND {unchanged}"
    finishing = (
        "OLD.status = 0 AND NEW.status > 0 AND OLD.object_id IS NULL"
        f" AND {same.format(c='attempts')}"
    )
    return f"({fixed}) AND (({counting}) OR ({finishing}))"


def _pg_function() -> str:
    allowed = _allowed("NEW.{c} IS NOT DISTINCT FROM OLD.{c}")
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
        op.execute(_PG_TRUNCATE)
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_no_truncate()"
        )
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute(_sqlite_update_trigger(f"WHEN NOT ({_allowed('NEW.{c} IS OLD.{c}')}) "))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION audit_log_no_truncate()")
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
