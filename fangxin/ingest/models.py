"""Tables of ingestion's own records: dead letters, security events, SQL time series."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base, utcnow

# The table moved to the devices domain (the SIP door writes it too); old imports keep working.
from fangxin.devices.models import SecurityEvent as SecurityEvent


class DeadLetter(Base):
    """A message (or time-series point) refused, with the reason, kept for inspection."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class SeriesPoint(Base):
    """A time-series point kept in SQL when no InfluxDB is configured (same identity rules)."""

    __tablename__ = "series_points"
    __table_args__ = (UniqueConstraint("measurement", "series_key", "ts", "point_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    measurement: Mapped[str] = mapped_column(String(64))
    # Sorted tag set; with measurement and ts it identifies the point, as in InfluxDB.
    series_key: Mapped[str] = mapped_column(String(300))
    ts: Mapped[dt.datetime]
    # Point.key: distinct readings of one series at one instant (InfluxDB gets a ns nudge).
    point_key: Mapped[str] = mapped_column(String(64), default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    fields: Mapped[dict[str, float | int | str | bool]] = mapped_column(JSON)


class SeriesOutbox(Base):
    """Line-protocol lines a web process wrote for InfluxDB; the ingester relays them."""

    __tablename__ = "series_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    line: Mapped[str] = mapped_column(Text)
