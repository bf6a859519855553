"""devices: business hours and licence, connectivity events, ingester runs, alarm workflow, targets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:00:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fangxin.db


revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = fangxin.db.UTCDateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('licence_no', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('opens', sa.String(length=5), server_default='06:00', nullable=False))
        batch_op.add_column(sa.Column('closes', sa.String(length=5), server_default='22:00', nullable=False))

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('credentials_rotated_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('conn_state', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('conn_since', UTC, nullable=True))
        batch_op.add_column(sa.Column('deadline', UTC, nullable=True))
        batch_op.create_index('ix_devices_conn_state_deadline', ['conn_state', 'deadline'], unique=False)

    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_no', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('notified_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('rectifying_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('closed_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('resolution', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('cleared_at', UTC, nullable=True))
        batch_op.create_index('ix_alarms_status_ts', ['status', 'ts'], unique=False)

    op.create_table('connectivity_events',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('at', UTC, nullable=False),
    sa.Column('until', UTC, nullable=True),
    sa.Column('at_s', sa.Float(), nullable=False),
    sa.Column('until_s', sa.Float(), nullable=True),
    sa.Column('cause', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_connectivity_events_device_id_devices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connectivity_events'))
    )
    with op.batch_alter_table('connectivity_events', schema=None) as batch_op:
        batch_op.create_index('ix_connectivity_events_report', ['state', 'device_id', 'at_s', 'until_s'], unique=False)
        batch_op.create_index('ix_connectivity_events_device_until', ['device_id', 'until_s'], unique=False)

    op.create_table('ingester_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('started_at', UTC, nullable=False),
    sa.Column('last_alive_at', UTC, nullable=False),
    sa.Column('ended_at', UTC, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingester_runs'))
    )
    with op.batch_alter_table('ingester_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingester_runs_started_at'), ['started_at'], unique=False)

    targets = op.create_table('coverage_targets',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('target', sa.Float(), nullable=False),
    sa.Column('due', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_coverage_targets'))
    )
    # The city plan's targets (domain.md §3.4 keeps them as configuration, editable via the API).
    op.bulk_insert(targets, [
        {'code': 'mclz', 'name': '明厨亮灶覆盖率(持证餐饮单位)', 'metric': 'coverage',
         'categories': [], 'target': 0.9, 'due': dt.date(2024, 12, 31)},
        {'code': 'internet_mclz', 'name': '互联网+明厨亮灶覆盖率(中央厨房、集体用餐配送单位、大型餐饮)',
         'metric': 'coverage', 'categories': ['中央厨房', '集体用餐配送单位', '大型餐饮'],
         'target': 1.0, 'due': None},
        {'code': 'online_rate', 'name': '设备在线率', 'metric': 'online_rate',
         'categories': [], 'target': 0.9, 'due': None},
    ])

    # Devices registered before this revision start offline since their registration.
    op.execute(
        "INSERT INTO connectivity_events (device_id, state, at, at_s, cause, recorded_at) "
        "SELECT id, 'offline', created_at, 0, 'registered', created_at FROM devices"
    )
    op.execute("UPDATE devices SET conn_state = 'offline', conn_since = created_at")
    bind = op.get_bind()
    epoch = (
        "(julianday(at) - 2440587.5) * 86400.0" if bind.dialect.name == 'sqlite'
        else "date_part('epoch', at)"
    )
    op.execute(f"UPDATE connectivity_events SET at_s = {epoch}")


def downgrade() -> None:
    op.drop_table('coverage_targets')
    with op.batch_alter_table('ingester_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingester_runs_started_at'))
    op.drop_table('ingester_runs')
    with op.batch_alter_table('connectivity_events', schema=None) as batch_op:
        batch_op.drop_index('ix_connectivity_events_device_until')
        batch_op.drop_index('ix_connectivity_events_report')
    op.drop_table('connectivity_events')
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy of sites would fail on
    # the foreign keys that devices hold to it.
    op.drop_index('ix_alarms_status_ts', table_name='alarms')
    for name in ('cleared_at', 'note', 'resolution', 'closed_at', 'rectifying_at', 'notified_at', 'notice_no'):
        op.drop_column('alarms', name)
    op.drop_index('ix_devices_conn_state_deadline', table_name='devices')
    for name in ('deadline', 'conn_since', 'conn_state', 'credentials_rotated_at', 'channel'):
        op.drop_column('devices', name)
    for name in ('closes', 'opens', 'licence_no'):
        op.drop_column('sites', name)
