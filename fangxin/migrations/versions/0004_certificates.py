"""certificates: subjects, 合格证, links, tests, scans, entry checks, recalls, signing keys

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fangxin.db


revision: str = '0004'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('signing_keys',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('algorithm', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', fangxin.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', fangxin.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_signing_keys'))
    )
    op.create_table('certificate_sequences',
    sa.Column('day', sa.String(length=8), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_certificate_sequences'))
    )
    op.create_table('subjects',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('contact', sa.String(length=64), nullable=False),
    sa.Column('district', sa.String(length=64), nullable=False),
    sa.Column('gtin_prefix', sa.String(length=12), nullable=True),
    sa.Column('created_at', fangxin.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subjects'))
    )
    op.create_index(op.f('ix_subjects_district'), 'subjects', ['district'], unique=False)
    op.create_table('certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('template', sa.String(length=16), nullable=False),
    sa.Column('template_version', sa.String(length=8), nullable=False),
    sa.Column('product', sa.String(length=100), nullable=False),
    sa.Column('quantity_milli', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('origin', sa.String(length=200), nullable=False),
    sa.Column('issued_at', fangxin.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('subject_name', sa.String(length=200), nullable=False),
    sa.Column('contact', sa.String(length=64), nullable=False),
    sa.Column('commitment', sa.Text(), nullable=False),
    sa.Column('basis', sa.JSON(), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=True),
    sa.Column('lot', sa.String(length=20), nullable=True),
    sa.Column('test_result_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('void_reason', sa.String(length=200), nullable=True),
    sa.Column('voided_at', fangxin.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('created_at', fangxin.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['signing_keys.key_id'], name=op.f('fk_certificates_key_id_signing_keys')),
    sa.ForeignKeyConstraint(['subject_id'], ['subjects.id'], name=op.f('fk_certificates_subject_id_subjects')),
    sa.ForeignKeyConstraint(['test_result_id'], ['rapid_test_results.id'], name=op.f('fk_certificates_test_result_id_rapid_test_results')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificates')),
    sa.UniqueConstraint('code', name=op.f('uq_certificates_code')),
    sa.UniqueConstraint('gtin', 'lot', name=op.f('uq_certificates_gtin_lot')),
    sa.UniqueConstraint('number', name=op.f('uq_certificates_number'))
    )
    op.create_index(op.f('ix_certificates_subject_id'), 'certificates', ['subject_id'], unique=False)
    op.create_table('certificate_links',
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=False),
    sa.Column('quantity_milli', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['certificates.id'], name=op.f('fk_certificate_links_child_id_certificates')),
    sa.ForeignKeyConstraint(['parent_id'], ['certificates.id'], name=op.f('fk_certificate_links_parent_id_certificates')),
    sa.PrimaryKeyConstraint('child_id', 'parent_id', name=op.f('pk_certificate_links'))
    )
    op.create_index(op.f('ix_certificate_links_parent_id'), 'certificate_links', ['parent_id'], unique=False)
    op.create_table('certificate_scans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('visitor', sa.String(length=16), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_at', fangxin.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', fangxin.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_certificate_scans_certificate_id_certificates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificate_scans')),
    sa.UniqueConstraint('certificate_id', 'day', 'visitor', 'site_id', name=op.f('uq_certificate_scans_certificate_id_day_visitor_site_id'))
    )
    op.create_table('certificate_tests',
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_certificate_tests_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['result_id'], ['rapid_test_results.id'], name=op.f('fk_certificate_tests_result_id_rapid_test_results')),
    sa.PrimaryKeyConstraint('certificate_id', 'result_id', name=op.f('pk_certificate_tests'))
    )
    op.create_index(op.f('ix_certificate_tests_result_id'), 'certificate_tests', ['result_id'], unique=False)
    op.create_table('entry_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=True),
    sa.Column('certificate_ref', sa.String(length=64), nullable=True),
    sa.Column('product', sa.String(length=100), nullable=False),
    sa.Column('quantity_milli', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('stall', sa.String(length=50), nullable=True),
    sa.Column('vendor', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('checked_at', fangxin.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', fangxin.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('test_result_id', sa.Integer(), nullable=True),
    sa.Column('key_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_entry_checks_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_entry_checks_site_id_sites')),
    sa.ForeignKeyConstraint(['test_result_id'], ['rapid_test_results.id'], name=op.f('fk_entry_checks_test_result_id_rapid_test_results')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entry_checks')),
    sa.UniqueConstraint('test_result_id', name=op.f('uq_entry_checks_test_result_id'))
    )
    op.create_index(op.f('ix_entry_checks_certificate_id'), 'entry_checks', ['certificate_id'], unique=False)
    op.create_index('ix_entry_checks_site_checked_at', 'entry_checks', ['site_id', 'checked_at'], unique=False)
    op.create_index('ix_entry_checks_site_status', 'entry_checks', ['site_id', 'status'], unique=False)
    op.create_table('recalls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('recalled_at', fangxin.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_recalls_certificate_id_certificates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recalls')),
    sa.UniqueConstraint('certificate_id', name=op.f('uq_recalls_certificate_id'))
    )


def downgrade() -> None:
    op.drop_table('recalls')
    op.drop_index('ix_entry_checks_site_status', table_name='entry_checks')
    op.drop_index('ix_entry_checks_site_checked_at', table_name='entry_checks')
    op.drop_index(op.f('ix_entry_checks_certificate_id'), table_name='entry_checks')
    op.drop_table('entry_checks')
    op.drop_index(op.f('ix_certificate_tests_result_id'), table_name='certificate_tests')
    op.drop_table('certificate_tests')
    op.drop_table('certificate_scans')
    op.drop_index(op.f('ix_certificate_links_parent_id'), table_name='certificate_links')
    op.drop_table('certificate_links')
    op.drop_index(op.f('ix_certificates_subject_id'), table_name='certificates')
    op.drop_table('certificates')
    op.drop_index(op.f('ix_subjects_district'), table_name='subjects')
    op.drop_table('subjects')
    op.drop_table('certificate_sequences')
    op.drop_table('signing_keys')
