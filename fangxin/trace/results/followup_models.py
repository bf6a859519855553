"""Tables of the follow-up of positives: the follow-up, its audited transitions, alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base


class Followup(Base):
    """The follow-up of one positive result: retests, then a case until it is closed."""

    __tablename__ = "followups"
    __table_args__ = (Index("ix_followups_site_state", "site_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The positive result that opened it (one follow-up per result).
    result_id: Mapped[int] = mapped_column(ForeignKey("rapid_test_results.id"), unique=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    state: Mapped[str] = mapped_column(String(16))
    # Which rules apply: "repeat" (market self-test: 复测 ×2), "recheck" (a regulator's test:
    # 复检 window), "banned" (banned substance: sealed, legal method, referral).
    path: Mapped[str] = mapped_column(String(8), default="repeat", server_default="repeat")
    # The end of the seller's 4-hour window to ask for 复检 (regulator's tests only).
    recheck_deadline: Mapped[dt.datetime | None]
    retests: Mapped[int] = mapped_column(default=0)
    opened_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    confirmed_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    # destroy (销毁) or harmless (无害化处理); "return" only on cases closed before issue 13.
    disposal: Mapped[str | None] = mapped_column(String(8))
    # Who witnessed the disposal, its record number and note.
    disposal_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The report to the county 市场监管 office: office, number, when.
    reported_at: Mapped[dt.datetime | None]
    report_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # 行刑衔接: the referral to the police (agency, number, link).
    referral: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The notice to the 产地 agriculture department sent when tracing upstream.
    agri_notice: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Optional laboratory confirmation: positive or negative, and where it was done.
    lab_result: Mapped[str | None] = mapped_column(String(8))
    lab_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Tracing upstream: the 合格证 number and who issued it (looked up or entered).
    certificate: Mapped[str | None] = mapped_column(String(64))
    upstream_issuer: Mapped[str | None] = mapped_column(String(200))
    notified_at: Mapped[dt.datetime | None]


class FollowupEvent(Base):
    """One transition of a follow-up: the audit trail, never updated or deleted."""

    __tablename__ = "followup_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    followup_id: Mapped[int] = mapped_column(ForeignKey("followups.id"), index=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class FollowupAlert(Base):
    """An in-app alert for regulators about a positive or a confirmed case."""

    __tablename__ = "followup_alerts"
    __table_args__ = (Index("ix_followup_alerts_district_created_at", "district", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    followup_id: Mapped[int] = mapped_column(ForeignKey("followups.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    district: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    read_at: Mapped[dt.datetime | None]
    read_by: Mapped[str | None] = mapped_column(String(100))
