"""Trust boundaries, rest of issue 11 (4b, 4c) and purchasers' other proofs (issue 13, 13).

- subject_sites: a subject's own sites and the labs it commissioned (委托检测); only their tests
  are evidence on its certificates.
- certificate_transfers: an upstream issuer naming the purchaser its lot went to; a purchaser
  re-issues only from lots transferred to it or admitted at its own site.
- quality_proofs, certificate_proofs: other quality proofs (type, number, photo) a purchaser cites.

Existing relations are carried over so that nothing issued before stops working: the site of
every test already cited as evidence becomes a linked site of that certificate's subject (own,
or commissioned when its basis was commissioned_test only), and every existing re-issue link
becomes a transfer of the parent to the child's subject.

Revision ID: 0012_trust
Revises: 0011_gb28181_timeouts
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

import fangxin.db

revision = "0012_trust"
down_revision = "0011_gb28181_timeouts"
branch_labels = None
depends_on = None


def _basis(value: Any) -> list[str]:
    return list(json.loads(value) if isinstance(value, str) else value or [])


def _carry_over() -> None:
    bind = op.get_bind()
    now = fangxin.db.utcnow()
    links: dict[tuple[str, str], str] = {}
    evidence = sa.text(
        "SELECT c.subject_id, r.site_id, c.basis FROM certificates c"
        " JOIN rapid_test_results r ON r.id = c.test_result_id"
    )
    for subject_id, site_id, basis in bind.execute(evidence):
        codes = _basis(basis)
        relation = "commissioned" if "commissioned_test" in codes and "self_test" not in codes else "own"
        links.setdefault((subject_id, site_id), relation)
    table = sa.table(
        "subject_sites",
        sa.column("subject_id"),
        sa.column("site_id"),
        sa.column("relation"),
        sa.column("created_at", fangxin.db.UTCDateTime()),
    )
    rows = [
        {"subject_id": s, "site_id": t, "relation": r, "created_at": now}
        for (s, t), r in sorted(links.items())
    ]
    if rows:
        op.bulk_insert(table, rows)
    handed = sa.text(
        "SELECT DISTINCT l.parent_id, c.subject_id FROM certificate_links l"
        " JOIN certificates c ON c.id = l.child_id"
    )
    moved = sa.table(
        "certificate_transfers",
        sa.column("certificate_id"),
        sa.column("purchaser_id"),
        sa.column("created_at", fangxin.db.UTCDateTime()),
    )
    transfers = [
        {"certificate_id": p, "purchaser_id": s, "created_at": now}
        for p, s in bind.execute(handed)
    ]
    if transfers:
        op.bulk_insert(moved, transfers)


def upgrade() -> None:
    op.create_table('quality_proofs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('issued_by', sa.String(length=200), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('subject_id', sa.String(length=64), nullable=True),
    sa.Column('site_id', sa.String(length=64), nullable=True),
    sa.Column('photo', sa.LargeBinary(), nullable=True),
    sa.Column('photo_type', sa.String(length=16), nullable=True),
    sa.Column('photo_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', fangxin.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_quality_proofs_site_id_sites')),
    sa.ForeignKeyConstraint(['subject_id'], ['subjects.id'], name=op.f('fk_quality_proofs_subject_id_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_proofs'))
    )
    with op.batch_alter_table('quality_proofs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_proofs_site_id'), ['site_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quality_proofs_subject_id'), ['subject_id'], unique=False)

    op.create_table('subject_sites',
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.Column('created_at', fangxin.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_subject_sites_site_id_sites')),
    sa.ForeignKeyConstraint(['subject_id'], ['subjects.id'], name=op.f('fk_subject_sites_subject_id_subjects')),
    sa.PrimaryKeyConstraint('subject_id', 'site_id', name=op.f('pk_subject_sites'))
    )
    with op.batch_alter_table('subject_sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subject_sites_site_id'), ['site_id'], unique=False)

    op.create_table('certificate_proofs',
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('proof_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_certificate_proofs_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['proof_id'], ['quality_proofs.id'], name=op.f('fk_certificate_proofs_proof_id_quality_proofs')),
    sa.PrimaryKeyConstraint('certificate_id', 'proof_id', name=op.f('pk_certificate_proofs'))
    )
    with op.batch_alter_table('certificate_proofs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificate_proofs_proof_id'), ['proof_id'], unique=False)

    op.create_table('certificate_transfers',
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('purchaser_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', fangxin.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_certificate_transfers_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['purchaser_id'], ['subjects.id'], name=op.f('fk_certificate_transfers_purchaser_id_subjects')),
    sa.PrimaryKeyConstraint('certificate_id', 'purchaser_id', name=op.f('pk_certificate_transfers'))
    )
    with op.batch_alter_table('certificate_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificate_transfers_purchaser_id'), ['purchaser_id'], unique=False)

    _carry_over()


def downgrade() -> None:
    with op.batch_alter_table('certificate_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_transfers_purchaser_id'))

    op.drop_table('certificate_transfers')
    with op.batch_alter_table('certificate_proofs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_proofs_proof_id'))

    op.drop_table('certificate_proofs')
    with op.batch_alter_table('subject_sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_sites_site_id'))

    op.drop_table('subject_sites')
    with op.batch_alter_table('quality_proofs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_proofs_subject_id'))
        batch_op.drop_index(batch_op.f('ix_quality_proofs_site_id'))

    op.drop_table('quality_proofs')
