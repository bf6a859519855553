"""Entry checks under the 2026 rules: external certificates, other proofs, fitting tests;
certificates keep their basis labels as printed (issue 13 items 8-11).

Existing lots refused only because fangxin did not know their certificate move to
external_certificate (awaiting a visual check), flagged refused_as_unknown, their time kept.
2026-template certificates get their printed labels (fixed by the basis codes); older imports
keep NULL: their printed labels were not kept when they were imported.

Revision ID: 0014_entry_checks
Revises: 0011_gb28181_timeouts
"""

import sqlalchemy as sa
from alembic import op

import fangxin.db

revision = "0014_entry_checks"
down_revision = "0013_followup_rules"
branch_labels = None
depends_on = None

UTC = fangxin.db.UTCDateTime(timezone=True)
# The 2026 template's labels (records.BASIS_LABELS), copied: a migration must not change later.
LABELS_2026 = {
    "quality_control": "质量安全控制符合要求",
    "self_test": "自行检测合格",
    "commissioned_test": "委托检测合格",
}


def upgrade() -> None:
    with op.batch_alter_table("entry_checks") as batch:
        batch.add_column(sa.Column("category", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("test_rule", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("visual_checked_at", UTC, nullable=True))
        batch.add_column(sa.Column("visual_note", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("visual_key_id", sa.Integer(), nullable=True))
        # "external_certificate" is longer than the old states.
        batch.alter_column(
            "status", existing_type=sa.String(length=16), type_=sa.String(length=24)
        )
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("basis_printed", sa.JSON(), nullable=True))
    op.create_table(
        "entry_proofs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("photo", sa.LargeBinary(), nullable=False),
        sa.Column("photo_type", sa.String(length=16), nullable=False),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entry_checks.id"], name=op.f("fk_entry_proofs_entry_id_entry_checks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_proofs")),
    )
    op.create_index(op.f("ix_entry_proofs_entry_id"), "entry_proofs", ["entry_id"], unique=False)
    _carry_data()


def _carry_data() -> None:
    conn = op.get_bind()
    entries = sa.table(
        "entry_checks", sa.column("id"), sa.column("status"), sa.column("flags", sa.JSON())
    )
    for pk, flags in conn.execute(
        sa.select(entries.c.id, entries.c.flags).where(entries.c.status == "refused")
    ):
        if "certificate_unknown" in (flags or []):
            conn.execute(
                entries.update()
                .where(entries.c.id == pk)
                .values(status="external_certificate", flags=[*flags, "refused_as_unknown"])
            )
    certs = sa.table(
        "certificates",
        sa.column("id"),
        sa.column("template_version"),
        sa.column("basis", sa.JSON()),
        sa.column("basis_printed", sa.JSON()),
    )
    for pk, basis in conn.execute(
        sa.select(certs.c.id, certs.c.basis).where(certs.c.template_version == "2026")
    ):
        printed = [LABELS_2026[code] for code in LABELS_2026 if code in (basis or [])]
        conn.execute(certs.update().where(certs.c.id == pk).values(basis_printed=printed))


def downgrade() -> None:
    entries = sa.table(
        "entry_checks", sa.column("id"), sa.column("status"), sa.column("flags", sa.JSON())
    )
    conn = op.get_bind()
    for pk, flags in conn.execute(
        sa.select(entries.c.id, entries.c.flags).where(
            entries.c.status == "external_certificate"
        )
    ):
        kept = [f for f in flags or [] if f != "refused_as_unknown"]
        # The old states: an unknown certificate was refused, anything else waited for a test.
        status = "refused" if "certificate_unknown" in kept else "pending_test"
        conn.execute(entries.update().where(entries.c.id == pk).values(status=status, flags=kept))
    op.drop_index(op.f("ix_entry_proofs_entry_id"), table_name="entry_proofs")
    op.drop_table("entry_proofs")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy would drop a table other rows refer to.
    op.execute("ALTER TABLE certificates DROP COLUMN basis_printed")
    with op.batch_alter_table("entry_checks") as batch:
        batch.alter_column(
            "status", existing_type=sa.String(length=24), type_=sa.String(length=16)
        )
        for name in ("visual_key_id", "visual_note", "visual_checked_at", "test_rule", "category"):
            batch.drop_column(name)
