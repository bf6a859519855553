"""Tables of data the plan's figures need and fangxin does not collect itself (imported)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base, utcnow

# Categories of the licence register as the plan's rules name them. 小餐饮 are registered
# (登记), not licensed: they are outside the 持证 denominator and have a target of their own.
CATEGORIES = (
    "中央厨房",
    "集体用餐配送单位",
    "特大型餐饮",
    "大型餐饮",
    "中型餐饮",
    "小型餐饮",
    "学校（含托幼）食堂",
    "单位食堂",
    "小餐饮",
)
REGISTERED_ONLY = "小餐饮"
# 明厨亮灶 forms: transparent glass (透明玻璃), open kitchen (开放式厨房), video (视频).
FORMS = {"glass": "透明玻璃", "open": "开放式厨房", "video": "视频"}


class Population(Base):
    """A unit's resident population (常住人口) with where the figure comes from."""

    __tablename__ = "plan_populations"

    district: Mapped[str] = mapped_column(String(64), primary_key=True)
    population: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(300))
    # False: no source confirmed yet; the figure is a local setting until an admin imports one.
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Licence(Base):
    """A caterer of the licence register (食品经营许可证), or a registered 小餐饮."""

    __tablename__ = "plan_licences"

    licence_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(300))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KitchenForm(Base):
    """A 明厨亮灶 form of a kitchen as an inspection found it (accepted or not)."""

    __tablename__ = "plan_kitchen_forms"
    __table_args__ = (UniqueConstraint("licence_no", "form", "inspected_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    licence_no: Mapped[str] = mapped_column(String(64), index=True)
    form: Mapped[str] = mapped_column(String(8))
    accepted: Mapped[bool] = mapped_column(Boolean)
    inspected_on: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(300))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SamplingCount(Base):
    """Official sampling inspection (抽检, 食品安全法 Art. 87) batches of a district and period."""

    __tablename__ = "plan_sampling_counts"
    __table_args__ = (UniqueConstraint("district", "period_start", "period_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    district: Mapped[str] = mapped_column(String(64))
    # [period_start, period_end] inclusive local dates.
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    batches: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(300))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PlanFigure(Base):
    """An imported numerator/denominator of a target fangxin holds no source data for."""

    __tablename__ = "plan_figures"
    __table_args__ = (
        UniqueConstraint("code", "district", "year"),
        Index("ix_plan_figures_year", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    numerator: Mapped[float] = mapped_column(Float)
    denominator: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(300))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CameraDaySite(Base):
    """A kitchen's cameras' counted offline seconds on a closed day, and their unobserved part."""

    __tablename__ = "camera_day_sites"

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    offline_s: Mapped[float] = mapped_column(Float)
    unknown_s: Mapped[float] = mapped_column(Float)
