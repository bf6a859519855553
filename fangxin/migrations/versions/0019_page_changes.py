"""The scan pages' change feed: every write that changes what a label's page shows is logged.

Triggers log the certificate whose page changes (NULL: every page, for a market's name, a
subject or a signing key) into page_changes, whichever code path writes it, a hand-edited row
included. Each web worker reads the feed once a second and drops the pages it names, so a
page seen before costs no query (fangxin.trace.certificates.page_changes, issue 17).

Revision ID: 0019_page_changes
Revises: 0018_stored_days
"""

import sqlalchemy as sa
from alembic import op

from fangxin.migrations import triggers

revision = "0019_page_changes"
down_revision = "0018_stored_days"
branch_labels = None
depends_on = None

EVERY = "NULL"  # no certificate: every page

# table -> verb -> (when, a SELECT of the certificates whose pages change, as column "page";
# {o}/{n} are OLD/NEW; EVERY: all pages).
_SHOWN_RESULT = ("device_id", "result_id", "item_code", "verdict", "value", "site_id", "ts")
_RESULT_PAGES = (
    "SELECT certificate_id AS page FROM certificate_tests WHERE result_id = {o}.id "
    "UNION SELECT id FROM certificates WHERE test_result_id = {o}.id"
)

_PROOF_PAGES = "SELECT certificate_id AS page FROM certificate_proofs WHERE proof_id = {o}.id"


def _both(column: str) -> str:
    return f"SELECT {{o}}.{column} AS page UNION SELECT {{n}}.{column}"


def _per_certificate(column: str) -> dict[str, tuple[str, str]]:
    """Insert, update or delete of a row naming its certificate in column."""
    return {
        "INSERT": ("TRUE", f"SELECT {{n}}.{column} AS page"),
        "UPDATE": ("TRUE", _both(column)),
        "DELETE": ("TRUE", f"SELECT {{o}}.{column} AS page"),
    }


def _events(dialect: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Return per table and verb: (when, the SELECT of the certificates whose pages change)."""
    every = ("TRUE", EVERY)
    return {
        "certificates": {
            "UPDATE": ("TRUE", "SELECT {o}.id AS page"),
            "DELETE": ("TRUE", "SELECT {o}.id AS page"),
        },
        "recalls": _per_certificate("certificate_id"),
        "entry_checks": _per_certificate("certificate_id"),
        "certificate_links": _per_certificate("child_id"),
        "certificate_tests": _per_certificate("certificate_id"),
        "certificate_proofs": _per_certificate("certificate_id"),
        # Only signed-in scans show on the page (the copied-code flag); counts of others do not.
        "certificate_scans": {
            "INSERT": ("{n}.signed_in", "SELECT {n}.certificate_id AS page"),
            "UPDATE": (
                "({o}.signed_in OR {n}.signed_in) AND ("
                + triggers.changed(("signed_in", "site_id", "certificate_id"), dialect)
                + ")",
                _both("certificate_id"),
            ),
            "DELETE": ("{o}.signed_in", "SELECT {o}.certificate_id AS page"),
        },
        "rapid_test_results": {
            "UPDATE": (triggers.changed(_SHOWN_RESULT, dialect), _RESULT_PAGES),
            "DELETE": ("TRUE", _RESULT_PAGES),
        },
        "quality_proofs": {
            "UPDATE": ("TRUE", _PROOF_PAGES),
            "DELETE": ("TRUE", _PROOF_PAGES),
        },
        "sites": {"UPDATE": (triggers.changed(("name", "district"), dialect), EVERY)},
        "test_items": {"UPDATE": (triggers.changed(("name_zh",), dialect), EVERY)},
        "subjects": {"UPDATE": every, "DELETE": every},
        "signing_keys": {"INSERT": every, "UPDATE": every, "DELETE": every},
    }


def _statements(dialect: str, o: str, n: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Return per table and verb: (when, the INSERT logging the change)."""
    if dialect == "postgresql":
        tx, now = "pg_current_xact_id()::text::bigint", "EXTRACT(EPOCH FROM clock_timestamp())"
    else:
        tx, now = "NULL", "((julianday('now') - 2440587.5) * 86400.0)"
    log = "INSERT INTO page_changes (certificate_id, tx, at_s) "
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for table, verbs in _events(dialect).items():
        out[table] = {}
        for verb, (when, ids) in verbs.items():
            if ids == EVERY:
                statement = f"{log}VALUES (NULL, {tx}, {now})"
            else:
                statement = (
                    f"{log}SELECT c.page, {tx}, {now} FROM ({ids.format(o=o, n=n)}) AS c "
                    "WHERE c.page IS NOT NULL"
                )
            out[table][verb] = (when.format(o=o, n=n), statement)
    return out


def upgrade() -> None:
    op.create_table(
        "page_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.Integer(), nullable=True),
        sa.Column("tx", sa.BigInteger(), nullable=True),
        sa.Column("at_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_page_changes_tx"), "page_changes", ["tx"])
    dialect = op.get_bind().dialect.name
    triggers.create("page_change", _statements(dialect, "OLD", "NEW"), dialect)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    triggers.drop("page_change", _statements(dialect, "OLD", "NEW"), dialect)
    op.drop_index(op.f("ix_page_changes_tx"), table_name="page_changes")
    op.drop_table("page_changes")
