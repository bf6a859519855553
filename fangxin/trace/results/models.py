"""Tables of the rapid-test item catalogue and of rapid-test results."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base


class TestItem(Base):
    """A rapid-test item of the catalogue: how a value turns into a verdict.

    The threshold here is the item's default; where the limit depends on the food category
    (GB 2760 limits of sulfur dioxide, nitrite, ...) TestItemLimit holds one row per category.
    """

    __tablename__ = "test_items"
    __test__ = False  # not a pytest test class

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(100))
    standard: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(16))
    quantitative: Mapped[bool] = mapped_column(Boolean, default=True)
    # "ge": value >= positive_threshold is positive; "gt": strictly greater.
    comparator: Mapped[str] = mapped_column(String(4), default="ge")
    positive_threshold: Mapped[float | None] = mapped_column(Float)
    # Values in [suspect_from, positive_threshold) are suspect (可疑).
    suspect_from: Mapped[float | None] = mapped_column(Float)
    # Food categories the item applies to (empty: any).
    food_categories: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    # Foods known to give false positives with this method: such results are flagged.
    false_positive_foods: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    note: Mapped[str | None] = mapped_column(Text)
    # A banned substance (非食用物质, 禁用药物): a positive is sealed and referred, not retested.
    banned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Refuse results of foods outside food_categories (GB/T 5009.199 covers vegetables only;
    # fresh seafood holds formaldehyde naturally).
    strict_scope: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Where the suspect band comes from (it is no standard's for GB/T 5009.199).
    suspect_basis: Mapped[str | None] = mapped_column(String(200))
    # A retired item stays for the results that name it but refuses new ones.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[dt.datetime | None]


class TestItemLimit(Base):
    """The limit of an item for one food category, overriding the item's default threshold."""

    __tablename__ = "test_item_limits"
    __table_args__ = (UniqueConstraint("item_code", "food_category"),)
    __test__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("test_items.code", ondelete="CASCADE"))
    # The canonical name (food_categories.canonical) and its GB 2760 Annex E code.
    food_category: Mapped[str] = mapped_column(String(50))
    category_code: Mapped[str | None] = mapped_column(String(20))
    comparator: Mapped[str] = mapped_column(String(4), default="gt")
    positive_threshold: Mapped[float] = mapped_column(Float)
    suspect_from: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(String(200))
    # Edition and clause of the standard the limit comes from (待核实 where unchecked).
    source: Mapped[str | None] = mapped_column(String(200))
    # 不得使用: the threshold is the method's detection limit; anything above it is positive.
    not_permitted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ReagentLot(Base):
    """A kit's reagent lot with its cut-off (检出限), which the result records when judged."""

    __tablename__ = "reagent_lots"
    __table_args__ = (UniqueConstraint("item_code", "lot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("test_items.code", ondelete="CASCADE"))
    lot: Mapped[str] = mapped_column(String(50))
    cutoff: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    maker: Mapped[str | None] = mapped_column(String(100))
    expires: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime]


class RapidTestResult(Base):
    """One rapid-test result (快检结果) as posted by a lab's instrument or software."""

    __tablename__ = "rapid_test_results"
    __table_args__ = (
        UniqueConstraint("device_id", "result_id"),
        Index("ix_rapid_test_results_site_ts", "site_id", "ts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    result_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime]
    # The catalogue code of the item (test_items.code).
    item_code: Mapped[str] = mapped_column(ForeignKey("test_items.code"))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(16))
    sample_name: Mapped[str] = mapped_column(String(100))
    sample_category: Mapped[str | None] = mapped_column(String(50))
    stall: Mapped[str | None] = mapped_column(String(50))
    # The 合格证 number the sample's lot came with: the link for tracing upstream.
    certificate: Mapped[str | None] = mapped_column(String(64))
    tester: Mapped[str | None] = mapped_column(String(50))
    reagent_lot: Mapped[str | None] = mapped_column(String(50))
    verdict: Mapped[str] = mapped_column(String(8))
    device_verdict: Mapped[str | None] = mapped_column(String(8))
    verdict_mismatch: Mapped[bool] = mapped_column(Boolean, default=False)
    # The door it came through (mqtt, http, demo).
    source: Mapped[str] = mapped_column(String(8))
    # Who tested: "market" (the market's self-test) or "regulator" (a regulator's 快检).
    tested_by: Mapped[str] = mapped_column(String(16), default="market", server_default="market")
    # The limit applied when judging: the catalogue may change later, the record must not.
    threshold: Mapped[float | None] = mapped_column(Float)
    comparator: Mapped[str | None] = mapped_column(String(4))
    # The sample is a food the method is known to misjudge: retest with another method.
    false_positive_risk: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # A retest points at the result it retests.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("rapid_test_results.id"), index=True)
    # Further fields some senders carry (provincial field set: sample number, MAC, remarks...).
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
