"""Tables of sites, devices and device alarms."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base, utcnow

SITE_KINDS = ("market", "kitchen")
DEVICE_KINDS = ("rapid_test", "camera", "nvr", "scale", "sensor")
DEFAULT_INTERVAL_S = 60


class Site(Base):
    """A market (农贸市场, 批发市场) or a kitchen (餐饮服务单位, 学校食堂, ...)."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    district: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        """Show the id and kind."""
        return f"Site({self.id!r}, {self.kind!r})"


class Device(Base):
    """A registered device of a site; liveness fields are receive times, never device clocks."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    interval_s: Mapped[int] = mapped_column(default=DEFAULT_INTERVAL_S)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    credential_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime | None]
    # Interval announced in the latest status payload; overrides the registry's when set.
    reported_interval_s: Mapped[int | None]
    state: Mapped[str | None] = mapped_column(String(8))
    state_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        """Show the id, site and kind."""
        return f"Device({self.id!r}, site={self.site_id!r}, {self.kind!r})"


class Alarm(Base):
    """An alarm a device raised (AI alarms of kitchen cameras, device faults)."""

    __tablename__ = "alarms"
    __table_args__ = (
        UniqueConstraint("device_id", "alarm_id"),
        Index("ix_alarms_site_ts", "site_id", "ts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    alarm_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime]
    type: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    snapshot_url: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="new")
    extra: Mapped[dict[str, object] | None] = mapped_column(JSON)
