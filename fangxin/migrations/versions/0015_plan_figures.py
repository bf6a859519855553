"""Plan figures: populations, licence register, 明厨亮灶 forms, 抽检 counts, imported figures;
devices keep the heartbeat interval they announced (the applied one is capped per kind).

Revision ID: 0015_plan_figures
Revises: 0011_gb28181_timeouts
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0015_plan_figures"
down_revision = "0014_entry_checks"
branch_labels = None
depends_on = None

# Frozen copy of fangxin.trace.plan.populations at this revision (migrations never import code
# that may change later).
CITY = "全市"
SOURCE = "第七次全国人口普查（2020年11月1日零时）：叶县第七次全国人口普查公报（叶县统计局，2021年6月18日）表1"
UNCONFIRMED = "未核实（本地设置）：待管理员导入平顶山市第七次全国人口普查公报数据"
UNITS = ("新华区", "卫东区", "湛河区", "石龙区", "宝丰县", "叶县", "鲁山县", "郏县", "舞钢市",
         "汝州市", "城乡一体化示范区", "高新区")
CONFIRMED = {CITY: 4987137, "叶县": 702345}


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("announced_interval_s", sa.Integer(), nullable=True))
    # What devices announced so far is what was applied (no cap was in force).
    op.execute("UPDATE devices SET announced_interval_s = reported_interval_s")
    populations = op.create_table(
        "plan_populations",
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("district", name=op.f("pk_plan_populations")),
    )
    op.create_table(
        "plan_licences",
        sa.Column("licence_no", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("licence_no", name=op.f("pk_plan_licences")),
    )
    op.create_index(op.f("ix_plan_licences_district"), "plan_licences", ["district"])
    op.create_table(
        "plan_kitchen_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("licence_no", sa.String(length=64), nullable=False),
        sa.Column("form", sa.String(length=8), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_kitchen_forms")),
        sa.UniqueConstraint(
            "licence_no", "form", "inspected_on",
            name=op.f("uq_plan_kitchen_forms_licence_no_form_inspected_on"),
        ),
    )
    op.create_index(op.f("ix_plan_kitchen_forms_licence_no"), "plan_kitchen_forms", ["licence_no"])
    op.create_table(
        "plan_sampling_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_sampling_counts")),
        sa.UniqueConstraint(
            "district", "period_start", "period_end",
            name=op.f("uq_plan_sampling_counts_district_period_start_period_end"),
        ),
    )
    op.create_table(
        "plan_figures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("numerator", sa.Float(), nullable=False),
        sa.Column("denominator", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_figures")),
        sa.UniqueConstraint(
            "code", "district", "year", name=op.f("uq_plan_figures_code_district_year")
        ),
    )
    op.create_index("ix_plan_figures_year", "plan_figures", ["year"])
    # 互联网+明厨亮灶 100 % applies to 大型 including 特大型 (plan 三（六）).
    targets = sa.table("coverage_targets", sa.column("code", sa.String), sa.column("categories", sa.JSON))
    op.execute(
        targets.update()
        .where(targets.c.code == "internet_mclz")
        .values(categories=["中央厨房", "集体用餐配送单位", "特大型餐饮", "大型餐饮"])
    )
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(populations, [
        {"district": unit, "population": CONFIRMED.get(unit),
         "source": SOURCE if unit in CONFIRMED else UNCONFIRMED,
         "confirmed": unit in CONFIRMED, "updated_at": now}
        for unit in (CITY, *UNITS)
    ])


def downgrade() -> None:
    op.drop_index("ix_plan_figures_year", table_name="plan_figures")
    op.drop_table("plan_figures")
    op.drop_table("plan_sampling_counts")
    op.drop_index(op.f("ix_plan_kitchen_forms_licence_no"), table_name="plan_kitchen_forms")
    op.drop_table("plan_kitchen_forms")
    op.drop_index(op.f("ix_plan_licences_district"), table_name="plan_licences")
    op.drop_table("plan_licences")
    op.drop_table("plan_populations")
    # Plain DROP COLUMN (SQLite 3.35+), not a batch copy: SQLite would have to drop a table
    # other rows refer to, which its foreign keys refuse once a deployment holds data.
    op.execute("ALTER TABLE devices DROP COLUMN announced_interval_s")
