"""Tables of the rapid-test item catalogue and of rapid-test results."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base


class TestItem(Base):
    """A rapid-test item of the catalogue: how a value turns into a verdict."""

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
    item_code: Mapped[str] = mapped_column(ForeignKey("test_items.code"))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(16))
    sample_name: Mapped[str] = mapped_column(String(100))
    sample_category: Mapped[str | None] = mapped_column(String(50))
    stall: Mapped[str | None] = mapped_column(String(50))
    certificate: Mapped[str | None] = mapped_column(String(64))
    tester: Mapped[str | None] = mapped_column(String(50))
    reagent_lot: Mapped[str | None] = mapped_column(String(50))
    verdict: Mapped[str] = mapped_column(String(8))
    device_verdict: Mapped[str | None] = mapped_column(String(8))
    verdict_mismatch: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(8))
