"""Follow-up states of issue 13 (暂停销售 at once, 复测/送检/复检, 封存, disposal, 行刑衔接);
who tested a result; catalogue editions, clauses, GB 2760 codes, banned items and reagent lots.

Every follow-up is kept: its state is mapped to the new one and the change is an audited event
(actor "migration:0013"), so the history says what it was.

Revision ID: 0013_followup_rules
Revises: 0011_gb28181_timeouts
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import fangxin.db

revision = "0013_followup_rules"
down_revision = "0012_trust"
branch_labels = None
depends_on = None

UTC = fangxin.db.UTCDateTime(timezone=True)
ACTOR = "migration:0013"
# old state -> new state, for market self-tests (no banned substance)
STATES = {
    "retest_pending": "suspended",
    "sale_stopped": "confirmed",
    "sealed": "confirmed",
    "destroyed": "disposed",
    # 退货 is no disposal: the lot is back on the market, the case stays open to dispose of it.
    "returned": "confirmed",
}
BANNED_STATES = {s: "sealed" for s in ("retest_pending", "confirmed", "sale_stopped", "sealed")}
BANNED_STATES |= {"destroyed": "disposed", "returned": "sealed"}
BACK = {"suspended": "retest_pending", "recheck_window": "retest_pending"}
BACK |= {"rechecking": "retest_pending", "lab_pending": "retest_pending", "disposed": "destroyed"}

BETA = "整顿办函〔2010〕50号（确认方法 GB/T 22286）"
BANNED = ["clenbuterol", "ractopamine", "salbutamol", "malachite-green", "borax", "rongalite"]
BANNED += ["formaldehyde"]
CHECK = "（限量待核实）"
KIT = "胶体金免疫层析法"
CAMPAIGN = "“治违禁、控药残、促提升”三年行动（方案二（三））"
ENZYME_NOTE = "酶抑制法对韭菜、芹菜易出现假阳性：以本项目胶体金卡检测"
# code, name, limit (mg/kg) per GB 2763-2021 [M]
PESTICIDES = [("carbofuran", "克百威", 0.02), ("phorate", "甲拌磷", 0.01)]
PESTICIDES += [("omethoate", "氧乐果", 0.02)]
# item, canonical category, code, limit, source, not permitted
SO2 = "GB 2760-2024 表A.1 二氧化硫残留量"
NO2 = "GB 2760-2024 表A.1 亚硝酸钠残留量"
LIMITS: list[tuple[str, str, str | None, float, str, bool]] = [
    ("sulfur-dioxide", "干制蔬菜", "04.02.02.02", 200.0, SO2 + CHECK, False),
    ("sulfur-dioxide", "腌渍的蔬菜", "04.02.02.03", 100.0, SO2 + CHECK, False),
    ("sulfur-dioxide", "水果干类", "04.01.02.02", 100.0, SO2 + "（0.1 g/kg）", False),
    ("sulfur-dioxide", "蜜饯凉果", "04.01.02.08", 350.0, SO2 + "（0.35 g/kg）", False),
    ("sulfur-dioxide", "干制的食用菌和藻类", "04.03.02.02", 50.0, SO2 + CHECK, False),
    ("sulfur-dioxide", "腐竹类", "04.04.01.04", 200.0, SO2 + CHECK, False),
    ("sulfur-dioxide", "经表面处理的鲜水果", "04.01.01.02", 50.0, SO2 + CHECK, False),
    ("sulfur-dioxide", "果酱", "04.01.02.05", 100.0, SO2 + CHECK, False),
    (
        "sulfur-dioxide",
        "豆芽菜",
        "04.02.01.04",
        10.0,
        "GB 2760-2024 表A.1 未列此类：不得使用（待核实）；判定限为方法检出限"
        " 10 mg/kg（本地设置，以试剂盒说明书为准）",
        True,
    ),
    ("nitrite", "腌渍的蔬菜", "04.02.02.03", 20.0, "GB 2762-2022 亚硝酸盐" + CHECK, False),
    ("nitrite", "腌腊肉制品类", "08.02.02", 30.0, NO2 + CHECK, False),
    ("nitrite", "酱卤肉制品类", "08.03.01", 30.0, NO2 + CHECK, False),
    ("nitrite", "熏、烧、烤肉类", "08.03.02", 30.0, NO2 + CHECK, False),
    ("nitrite", "油炸肉类", "08.03.03", 30.0, NO2 + CHECK, False),
    ("nitrite", "西式火腿", "08.03.04", 70.0, NO2 + CHECK, False),
    ("nitrite", "肉灌肠类", "08.03.05", 30.0, NO2 + CHECK, False),
    ("nitrite", "发酵肉制品类", "08.03.06", 30.0, NO2 + CHECK, False),
    ("nitrite", "肉罐头类", "08.04", 50.0, NO2 + CHECK, False),
]
# Names seeded by 0003 -> the canonical names of GB 2760 Annex E.
RENAMES = {"腌渍蔬菜": "腌渍的蔬菜", "腌腊肉制品": "腌腊肉制品类", "酱卤肉制品": "酱卤肉制品类"}
ITEM_UPDATES: dict[str, dict[str, Any]] = {
    "pesticide-ache": {
        "food_categories": ["蔬菜"],
        "strict_scope": True,
        "note": "抑制率≥50%为阳性（GB/T 5009.199-2003，适用于蔬菜；不以此标准判定水果）",
        "suspect_basis": "本地设置：40%–50%为内部复测提示，来自一项研究的建议，并非国家标准规定",
    },
    "pesticide-ache-nyt448": {"strict_scope": True},
    "clenbuterol": {"standard": BETA},
    "ractopamine": {"standard": BETA},
    "salbutamol": {"standard": BETA},
    "malachite-green": {"standard": "农业农村部公告第250号（禁用，不得检出）"},
    "formaldehyde": {
        "food_categories": ["水发产品", "干水产品"],
        "strict_scope": True,
        "note": "仅用于水发产品、干水产品：鲜活水产品本底含甲醛，不适用",
    },
    "sulfur-dioxide": {"standard": "GB 2760-2024（2025-02-08 实施）"},
    "nitrite": {"standard": "GB 2760-2024 / GB 2762-2022（待核实）"},
}


def _columns() -> None:
    # Plain ADD COLUMN, not a batch copy: SQLite would have to drop tables other rows refer to.
    add = op.add_column
    add("followups", sa.Column("path", sa.String(8), server_default="repeat", nullable=False))
    add("followups", sa.Column("recheck_deadline", UTC, nullable=True))
    add("followups", sa.Column("disposal_detail", sa.JSON(), nullable=True))
    add("followups", sa.Column("reported_at", UTC, nullable=True))
    add("followups", sa.Column("report_detail", sa.JSON(), nullable=True))
    add("followups", sa.Column("referral", sa.JSON(), nullable=True))
    add("followups", sa.Column("agri_notice", sa.JSON(), nullable=True))
    by = sa.Column("tested_by", sa.String(16), server_default="market", nullable=False)
    add("rapid_test_results", by)
    add("test_items", sa.Column("banned", sa.Boolean(), server_default=sa.false(), nullable=False))
    strict: sa.Column[bool] = sa.Column(
        "strict_scope", sa.Boolean(), server_default=sa.false(), nullable=False
    )
    add("test_items", strict)
    add("test_items", sa.Column("suspect_basis", sa.String(200), nullable=True))
    add("test_item_limits", sa.Column("category_code", sa.String(20), nullable=True))
    add("test_item_limits", sa.Column("source", sa.String(200), nullable=True))
    flag: sa.Column[bool] = sa.Column(
        "not_permitted", sa.Boolean(), server_default=sa.false(), nullable=False
    )
    add("test_item_limits", flag)
    op.create_table(
        "reagent_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(64), nullable=False),
        sa.Column("lot", sa.String(50), nullable=False),
        sa.Column("cutoff", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("maker", sa.String(100), nullable=True),
        sa.Column("expires", sa.Date(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_code"],
            ["test_items.code"],
            name=op.f("fk_reagent_lots_item_code_test_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reagent_lots")),
        sa.UniqueConstraint("item_code", "lot", name=op.f("uq_reagent_lots_item_code_lot")),
    )


def _followups(conn: sa.Connection) -> None:
    f = sa.table(
        "followups",
        sa.column("id", sa.Integer),
        sa.column("result_id", sa.Integer),
        sa.column("state", sa.String),
        sa.column("path", sa.String),
        sa.column("lab_result", sa.String),
        sa.column("disposal", sa.String),
        sa.column("disposal_detail", sa.JSON),
        sa.column("updated_at", UTC),
    )
    r = sa.table("rapid_test_results", sa.column("id"), sa.column("item_code"))
    events = sa.table(
        "followup_events",
        sa.column("followup_id", sa.Integer),
        sa.column("at", UTC),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("from_state", sa.String),
        sa.column("to_state", sa.String),
        sa.column("detail", sa.JSON),
    )
    rows = conn.execute(
        sa.select(f.c.id, f.c.state, f.c.lab_result, f.c.disposal, f.c.updated_at, r.c.item_code)
        .join(r, r.c.id == f.c.result_id)
        .order_by(f.c.id)
    ).all()
    now = fangxin.db.utcnow()
    for fid, old, lab, disposal, _, item in rows:
        banned = item in BANNED
        new = (BANNED_STATES if banned else STATES).get(old, old)
        if banned and new == "sealed" and lab == "positive":
            new = "confirmed"
        values: dict[str, Any] = {"state": new, "path": "banned" if banned else "repeat"}
        if old == "destroyed":
            values["disposal_detail"] = {"method": "destroy", "method_zh": "销毁", "witness": None}
        conn.execute(f.update().where(f.c.id == fid).values(**values))
        if new != old:
            detail = {"was": old, "reason": "issue 13 follow-up states", "disposal": disposal}
            conn.execute(
                events.insert().values(
                    followup_id=fid,
                    at=now,
                    actor=ACTOR,
                    action="migrate",
                    from_state=old,
                    to_state=new,
                    detail=detail,
                )
            )


def _catalogue(conn: sa.Connection) -> None:
    items = sa.table(
        "test_items",
        *(sa.column(n) for n in ("code", "name_zh", "method", "standard", "unit", "comparator")),
        *(sa.column(n) for n in ("positive_threshold", "suspect_from", "note", "suspect_basis")),
        sa.column("quantitative", sa.Boolean),
        sa.column("food_categories", sa.JSON),
        sa.column("false_positive_foods", sa.JSON),
        sa.column("active", sa.Boolean),
        sa.column("banned", sa.Boolean),
        sa.column("strict_scope", sa.Boolean),
    )
    present = set(conn.scalars(sa.select(items.c.code)))
    for code, values in ITEM_UPDATES.items():
        if code in present:  # an admin may have removed a seeded item
            conn.execute(items.update().where(items.c.code == code).values(**values))
    conn.execute(items.update().where(items.c.code.in_(BANNED)).values(banned=True))
    new_items = [
        {
            "code": code,
            "name_zh": f"{name}（胶体金）",
            "method": KIT,
            "standard": f"GB 2763-2021 最大残留限量 {limit} mg/kg（待核实）",
            "unit": "mg/kg",
            "quantitative": False,
            "comparator": "ge",
            "positive_threshold": None,
            "suspect_from": None,
            "food_categories": ["豇豆", "韭菜", "芹菜"],
            "false_positive_foods": [],
            "note": f"{CAMPAIGN}；{ENZYME_NOTE}；检出限按试剂批次登记",
            "suspect_basis": None,
            "active": True,
            "banned": False,
            "strict_scope": False,
        }
        for code, name, limit in PESTICIDES
        if code not in present
    ]
    if new_items:
        op.bulk_insert(items, new_items)
    limits = sa.table(
        "test_item_limits",
        *(sa.column(n) for n in ("item_code", "food_category", "category_code", "comparator")),
        *(sa.column(n) for n in ("positive_threshold", "suspect_from", "note", "source")),
        sa.column("not_permitted", sa.Boolean),
    )
    # GB 2762 calls the pickle 腌渍蔬菜, GB 2760 腌渍的蔬菜: one canonical name now.
    pairs = sa.select(limits.c.item_code, limits.c.food_category)
    before = {(a, b) for a, b in conn.execute(pairs)}
    for code, name in sorted(before):
        canonical = RENAMES.get(name)
        if canonical and (code, canonical) not in before:
            match = (limits.c.item_code == code, limits.c.food_category == name)
            conn.execute(limits.update().where(*match).values(food_category=canonical))
    seeded = {(a, b) for a, b in conn.execute(pairs)}
    for code, category, cat_code, limit, source, not_permitted in LIMITS:
        if code not in present:
            continue
        values = {"category_code": cat_code, "source": source, "not_permitted": not_permitted}
        if (code, category) in seeded:  # an admin's own threshold stays; it gains its source
            match = (limits.c.item_code == code, limits.c.food_category == category)
            conn.execute(limits.update().where(*match).values(**values))
            continue
        note = "不得使用：检出即不合格" if not_permitted else f"限量 {limit:g} mg/kg"
        row: dict[str, Any] = {"item_code": code, "food_category": category, "comparator": "gt"}
        row |= {"positive_threshold": limit, "suspect_from": None, "note": note}
        conn.execute(limits.insert().values(**row, **values))
    applies = {code: sorted({c for i, c, *_ in LIMITS if i == code}) for code in ("nitrite",)}
    applies["sulfur-dioxide"] = sorted({c for i, c, *_ in LIMITS if i == "sulfur-dioxide"})
    for code, categories in applies.items():
        if code in present:
            conn.execute(
                items.update().where(items.c.code == code).values(food_categories=categories)
            )


def upgrade() -> None:
    _columns()
    conn = op.get_bind()
    _followups(conn)
    _catalogue(conn)


DROPPED = {
    "test_item_limits": ("not_permitted", "source", "category_code"),
    "test_items": ("suspect_basis", "strict_scope", "banned"),
    "rapid_test_results": ("tested_by",),
    "followups": ("agri_notice", "referral", "report_detail", "reported_at")
    + ("disposal_detail", "recheck_deadline", "path"),
}


def _back(conn: sa.Connection) -> None:
    f = sa.table("followups", sa.column("state", sa.String))
    for new, old in BACK.items():
        conn.execute(f.update().where(f.c.state == new).values(state=old))
    # The "migrate" events stay: the audit trail is never deleted.


def downgrade() -> None:
    conn = op.get_bind()
    _back(conn)
    codes: Sequence[str] = [code for code, _, _ in PESTICIDES]
    items = sa.table("test_items", sa.column("code"))
    used: Any = sa.select(sa.column("item_code")).select_from(sa.table("rapid_test_results"))
    conn.execute(items.delete().where(items.c.code.in_(codes), items.c.code.not_in(used)))
    op.drop_table("reagent_lots")
    # Plain DROP COLUMN (SQLite 3.35+), for the reason _columns gives.
    for table, names in DROPPED.items():
        for name in names:
            op.drop_column(table, name)
