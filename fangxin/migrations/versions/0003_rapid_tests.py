"""rapid tests: catalogue fields and per-category limits, retests, follow-ups, webhooks

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import fangxin.db

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = fangxin.db.UTCDateTime(timezone=True)
# Foods that give false positives with enzyme inhibition (domain.md §2.1): retest another way.
ENZYME_FALSE_POSITIVES = ["洋葱", "大蒜", "萝卜", "韭菜", "芹菜", "香菜", "茭白", "蘑菇", "番茄"]
BANNED = "食品中可能违法添加的非食用物质名单（不得检出）"
BANNED_DRUGS = "农业农村部公告第250号（禁用，不得检出）"
KIT_NOTE = "定性判定；检出限以试剂盒说明书为准"


def _item(
    code: str,
    name: str,
    method: str,
    standard: str,
    unit: str,
    quantitative: bool,
    threshold: float | None = None,
    suspect: float | None = None,
    applies: Sequence[str] = (),
    false_positives: Sequence[str] = (),
    note: str | None = None,
    comparator: str = "ge",
) -> dict[str, Any]:
    return {
        "code": code,
        "name_zh": name,
        "method": method,
        "standard": standard,
        "unit": unit,
        "quantitative": quantitative,
        "comparator": comparator,
        "positive_threshold": threshold,
        "suspect_from": suspect,
        "food_categories": list(applies),
        "false_positive_foods": list(false_positives),
        "note": note,
        "active": True,
    }


ITEMS = [
    _item(
        "pesticide-ache-nyt448",
        "有机磷和氨基甲酸酯类农药残留（酶抑制法，NY/T 448）",
        "酶抑制法",
        "NY/T 448-2001",
        "%",
        True,
        70.0,
        None,
        ["蔬菜"],
        ENZYME_FALSE_POSITIVES,
        "抑制率≥70%为阳性",
    ),
    _item(
        "clenbuterol",
        "克伦特罗",
        "胶体金免疫层析法",
        BANNED_DRUGS,
        "µg/kg",
        False,
        applies=["畜禽肉", "畜禽内脏"],
        note=KIT_NOTE,
    ),
    _item(
        "ractopamine",
        "莱克多巴胺",
        "胶体金免疫层析法",
        BANNED_DRUGS,
        "µg/kg",
        False,
        applies=["畜禽肉", "畜禽内脏"],
        note=KIT_NOTE,
    ),
    _item(
        "salbutamol",
        "沙丁胺醇",
        "胶体金免疫层析法",
        BANNED_DRUGS,
        "µg/kg",
        False,
        applies=["畜禽肉", "畜禽内脏"],
        note=KIT_NOTE,
    ),
    _item(
        "formaldehyde",
        "甲醛",
        "乙酰丙酮比色法",
        BANNED,
        "mg/kg",
        False,
        applies=["水产品", "水发产品"],
        false_positives=["龙头鱼", "鱿鱼"],
        note="部分水产品本底含甲醛，阳性宜送实验室确认",
    ),
    _item(
        "sulfur-dioxide",
        "二氧化硫",
        "盐酸副玫瑰苯胺比色法",
        "GB 2760",
        "mg/kg",
        True,
        applies=["干制蔬菜", "腌渍的蔬菜", "水果干类", "蜜饯凉果", "干制的食用菌和藻类", "腐竹类"],
        note="限量随食品类别而定（以二氧化硫残留量计），见分类限量",
        comparator="gt",
    ),
    _item(
        "nitrite",
        "亚硝酸盐",
        "盐酸萘乙二胺比色法",
        "GB 2760 / GB 2762",
        "mg/kg",
        True,
        applies=["腌渍蔬菜", "腌腊肉制品", "酱卤肉制品", "西式火腿"],
        note="限量随食品类别而定（以亚硝酸钠计），见分类限量",
        comparator="gt",
    ),
    _item(
        "borax",
        "硼砂",
        "姜黄试纸法",
        BANNED,
        "mg/kg",
        False,
        applies=["米面制品", "肉制品"],
        note=KIT_NOTE,
    ),
    _item(
        "rongalite",
        "吊白块（次硫酸氢钠甲醛）",
        "比色法",
        BANNED,
        "mg/kg",
        False,
        applies=["米面制品", "腐竹类", "粉丝粉条"],
        note=KIT_NOTE,
    ),
    _item(
        "malachite-green",
        "孔雀石绿",
        "胶体金免疫层析法",
        BANNED_DRUGS,
        "µg/kg",
        False,
        applies=["水产品"],
        note=KIT_NOTE,
    ),
]
# Maximum levels by food category (positive when exceeded); check against the edition in force.
LIMITS = [
    ("sulfur-dioxide", "干制蔬菜", 200.0, "GB 2760：0.2 g/kg"),
    ("sulfur-dioxide", "腌渍的蔬菜", 100.0, "GB 2760：0.1 g/kg"),
    ("sulfur-dioxide", "水果干类", 100.0, "GB 2760：0.1 g/kg"),
    ("sulfur-dioxide", "蜜饯凉果", 350.0, "GB 2760：0.35 g/kg"),
    ("sulfur-dioxide", "干制的食用菌和藻类", 50.0, "GB 2760：0.05 g/kg"),
    ("sulfur-dioxide", "腐竹类", 200.0, "GB 2760：0.2 g/kg"),
    ("nitrite", "腌渍蔬菜", 20.0, "GB 2762：20 mg/kg"),
    ("nitrite", "腌腊肉制品", 30.0, "GB 2760：残留量 30 mg/kg"),
    ("nitrite", "酱卤肉制品", 30.0, "GB 2760：残留量 30 mg/kg"),
    ("nitrite", "西式火腿", 70.0, "GB 2760：残留量 70 mg/kg"),
]


def upgrade() -> None:
    with op.batch_alter_table("test_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("food_categories", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "false_positive_foods", sa.JSON(), server_default=sa.text("'[]'"), nullable=False
            )
        )
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(sa.Column("updated_at", UTC, nullable=True))

    op.create_table(
        "test_item_limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column("food_category", sa.String(length=50), nullable=False),
        sa.Column("comparator", sa.String(length=4), nullable=False),
        sa.Column("positive_threshold", sa.Float(), nullable=False),
        sa.Column("suspect_from", sa.Float(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_code"],
            ["test_items.code"],
            name=op.f("fk_test_item_limits_item_code_test_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_item_limits")),
        sa.UniqueConstraint(
            "item_code", "food_category", name=op.f("uq_test_item_limits_item_code_food_category")
        ),
    )

    with op.batch_alter_table("rapid_test_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("threshold", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("comparator", sa.String(length=4), nullable=True))
        batch_op.add_column(
            sa.Column(
                "false_positive_risk", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("extra", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_rapid_test_results_parent_id_rapid_test_results"),
            "rapid_test_results",
            ["parent_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_rapid_test_results_parent_id"), ["parent_id"], unique=False
        )

    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("retests", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("confirmed_at", UTC, nullable=True),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column("disposal", sa.String(length=8), nullable=True),
        sa.Column("lab_result", sa.String(length=8), nullable=True),
        sa.Column("lab_detail", sa.JSON(), nullable=True),
        sa.Column("certificate", sa.String(length=64), nullable=True),
        sa.Column("upstream_issuer", sa.String(length=200), nullable=True),
        sa.Column("notified_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["rapid_test_results.id"],
            name=op.f("fk_followups_result_id_rapid_test_results"),
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_followups_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followups")),
        sa.UniqueConstraint("result_id", name=op.f("uq_followups_result_id")),
    )
    with op.batch_alter_table("followups", schema=None) as batch_op:
        batch_op.create_index("ix_followups_site_state", ["site_id", "state"], unique=False)

    op.create_table(
        "followup_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("followup_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["followup_id"], ["followups.id"], name=op.f("fk_followup_events_followup_id_followups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_events")),
    )
    with op.batch_alter_table("followup_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_followup_events_followup_id"), ["followup_id"], unique=False
        )

    op.create_table(
        "followup_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("followup_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("read_at", UTC, nullable=True),
        sa.Column("read_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["followup_id"], ["followups.id"], name=op.f("fk_followup_alerts_followup_id_followups")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_followup_alerts_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_alerts")),
    )
    with op.batch_alter_table("followup_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_followup_alerts_district_created_at", ["district", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_followup_alerts_followup_id"), ["followup_id"], unique=False
        )

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("event_key", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("lease_until", UTC, nullable=True),
        sa.Column("delivered_at", UTC, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "endpoint_id", "event_key", name=op.f("uq_webhook_deliveries_endpoint_id_event_key")
        ),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_status_next_attempt_at",
            ["status", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_attempts_delivery_id"), ["delivery_id"], unique=False
        )

    _seed()


def _seed() -> None:
    items = sa.table(
        "test_items",
        sa.column("code", sa.String),
        sa.column("name_zh", sa.String),
        sa.column("method", sa.String),
        sa.column("standard", sa.String),
        sa.column("unit", sa.String),
        sa.column("quantitative", sa.Boolean),
        sa.column("comparator", sa.String),
        sa.column("positive_threshold", sa.Float),
        sa.column("suspect_from", sa.Float),
        sa.column("food_categories", sa.JSON),
        sa.column("false_positive_foods", sa.JSON),
        sa.column("note", sa.Text),
        sa.column("active", sa.Boolean),
    )
    # The GB/T 5009.199 item seeded in 0001 keeps its code and thresholds; it gains its data.
    op.execute(
        items.update()
        .where(items.c.code == "pesticide-ache")
        .values(
            food_categories=["蔬菜", "水果"],
            false_positive_foods=ENZYME_FALSE_POSITIVES,
            note="抑制率≥50%为阳性；40%–50%为可疑，应复检",
        )
    )
    op.bulk_insert(items, ITEMS)
    limits = sa.table(
        "test_item_limits",
        sa.column("item_code", sa.String),
        sa.column("food_category", sa.String),
        sa.column("comparator", sa.String),
        sa.column("positive_threshold", sa.Float),
        sa.column("suspect_from", sa.Float),
        sa.column("note", sa.String),
    )
    op.bulk_insert(
        limits,
        [
            {
                "item_code": code,
                "food_category": category,
                "comparator": "gt",
                "positive_threshold": limit,
                "suspect_from": None,
                "note": note,
            }
            for code, category, limit, note in LIMITS
        ],
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM test_items WHERE code IN ({})".format(
                ", ".join(f"'{item['code']}'" for item in ITEMS)
            )
        )
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_delivery_id"))
    op.drop_table("webhook_attempts")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_status_next_attempt_at")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("followup_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followup_alerts_followup_id"))
        batch_op.drop_index("ix_followup_alerts_district_created_at")
    op.drop_table("followup_alerts")
    with op.batch_alter_table("followup_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followup_events_followup_id"))
    op.drop_table("followup_events")
    with op.batch_alter_table("followups", schema=None) as batch_op:
        batch_op.drop_index("ix_followups_site_state")
    op.drop_table("followups")
    with op.batch_alter_table("rapid_test_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rapid_test_results_parent_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_rapid_test_results_parent_id_rapid_test_results"), type_="foreignkey"
        )
        batch_op.drop_column("extra")
        batch_op.drop_column("parent_id")
        batch_op.drop_column("false_positive_risk")
        batch_op.drop_column("comparator")
        batch_op.drop_column("threshold")
    op.drop_table("test_item_limits")
    with op.batch_alter_table("test_items", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("active")
        batch_op.drop_column("note")
        batch_op.drop_column("false_positive_foods")
        batch_op.drop_column("food_categories")
