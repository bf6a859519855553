"""Tables of sites, devices, connectivity, observed runs, alarms, security events, targets."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fangxin.db import Base, utcnow

SITE_KINDS = ("market", "kitchen")
DEVICE_KINDS = ("rapid_test", "camera", "nvr", "scale", "sensor")
# The 明厨亮灶 video devices: what the kitchens' figures and the coverage count.
CAMERA_KINDS = ("camera", "nvr")
DEFAULT_INTERVAL_S = 60
# Missed heartbeats after which a device is offline (最大心跳超时次数), set per device.
# 最大心跳超时次数: default 3 as the GB/T 28181 keepalive defaults (60 s × 3, devices' usual
# factory setting, unverified against the standard's text); the 2–10 bounds are a local setting.
DEFAULT_MISSED_BEATS, MIN_MISSED_BEATS, MAX_MISSED_BEATS = 3, 2, 10
# The doors devices talk through; each observes (and is down) on its own.
MQTT_DOOR, SIP_DOOR = "mqtt", "sip"
DEFAULT_OPENS, DEFAULT_CLOSES = "06:00", "22:00"
# Longest heartbeat interval a device may announce and have applied, per kind. GB/T 28181 lets
# the platform set the keepalive interval, so a camera announcing a day is not believed; 300 s
# for cameras and NVRs is a local setting (FANGXIN_CAMERA_MAX_INTERVAL_S), not the standard's.
DEFAULT_CAMERA_MAX_INTERVAL_S = 300
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Site(Base):
    """A market (农贸市场, 批发市场) or a kitchen (餐饮服务单位, 学校食堂, ...)."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    district: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # 食品经营许可证 number; a kitchen with one is a licensed caterer (the coverage denominator).
    licence_no: Mapped[str | None] = mapped_column(String(64))
    # Business hours as local HH:MM; closes < opens crosses midnight, opens == closes is 24 h.
    opens: Mapped[str] = mapped_column(String(5), default=DEFAULT_OPENS, server_default="06:00")
    closes: Mapped[str] = mapped_column(String(5), default=DEFAULT_CLOSES, server_default="22:00")

    def __repr__(self) -> str:
        """Show the id and kind."""
        return f"Site({self.id!r}, {self.kind!r})"


class Device(Base):
    """A registered device of a site; liveness fields are receive times, never device clocks."""

    __tablename__ = "devices"
    __table_args__ = (
        Index("ix_devices_conn_state_deadline", "conn_state", "deadline"),
        # The overview's long outages: offline devices, longest first, read 20 at a time.
        Index("ix_devices_conn_state_since", "conn_state", "conn_since", "id"),
        # The kitchens' camera passes join a site's devices to their outages from this index
        # alone (columns that never change with liveness, so heartbeats do not rewrite it).
        Index(
            "ix_devices_site_cameras",
            "site_id",
            "kind",
            "active",
            "created_at",
            "gb_id",
            "sip_parent",
            "id",
        ),
        # The uptime chart's count of devices registered before and during its month.
        Index("ix_devices_active_created", "active", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    interval_s: Mapped[int] = mapped_column(default=DEFAULT_INTERVAL_S)
    missed_beats: Mapped[int] = mapped_column(
        default=DEFAULT_MISSED_BEATS, server_default=str(DEFAULT_MISSED_BEATS)
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    credential_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime | None]
    # Interval of the latest status payload as applied (capped per kind); overrides the
    # registry's when set. `announced_interval_s` keeps what the device said, uncapped.
    reported_interval_s: Mapped[int | None]
    announced_interval_s: Mapped[int | None]
    state: Mapped[str | None] = mapped_column(String(8))
    state_at: Mapped[dt.datetime | None]
    channel: Mapped[int | None] = mapped_column(Integer)
    credentials_rotated_at: Mapped[dt.datetime | None]
    # Connectivity as the events say: state since when, and what the sweep waits for (online:
    # the heartbeat timeout; offline: the outage's start, until its offline alarm is raised;
    # NULL: nothing, e.g. never heard from). The index on it is the sweep's deadline queue.
    conn_state: Mapped[str | None] = mapped_column(String(8))
    conn_since: Mapped[dt.datetime | None]
    deadline: Mapped[dt.datetime | None]
    # GB/T 28181: the 20-digit 国标编码, MD5(id:realm:password) for Digest (never the password),
    # the NVR a channel belongs to, and the registration in force (it survives our restarts).
    gb_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    sip_ha1: Mapped[str | None] = mapped_column(String(32))
    sip_parent: Mapped[str | None] = mapped_column(String(64), index=True)
    sip_contact: Mapped[str | None] = mapped_column(String(100))
    sip_expires_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        """Show the id, site and kind."""
        return f"Device({self.id!r}, site={self.site_id!r}, {self.kind!r})"


class ConnectivityEvent(Base):
    """A transition of a device into a state; `until` is the next transition (NULL: current).

    The times are also kept as epoch seconds: SQLite stores datetimes as text, and parsing
    millions of them made the uptime report five times slower than plain arithmetic.
    """

    __tablename__ = "connectivity_events"
    __table_args__ = (
        # Covering index of the uptime report: offline periods in device order.
        Index("ix_connectivity_events_report", "state", "device_id", "at_s", "until_s"),
        # The current event of a device (until_s NULL), and a device's periods in a window.
        Index("ix_connectivity_events_device_until", "device_id", "until_s"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    state: Mapped[str] = mapped_column(String(8))
    at: Mapped[dt.datetime]
    until: Mapped[dt.datetime | None]
    at_s: Mapped[float] = mapped_column(Float)
    until_s: Mapped[float | None] = mapped_column(Float)
    # registered, message, timeout, lwt (declared offline), deactivated
    cause: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IngesterRun(Base):
    """A stretch of time during which a door (MQTT ingester, SIP gateway) was observing."""

    __tablename__ = "ingester_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    door: Mapped[str] = mapped_column(String(8), default=MQTT_DOOR, server_default=MQTT_DOOR)
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    last_alive_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]


class Alarm(Base):
    """An alarm a device raised (AI alarms of kitchen cameras, device faults)."""

    __tablename__ = "alarms"
    __table_args__ = (
        UniqueConstraint("device_id", "alarm_id"),
        Index("ix_alarms_site_ts", "site_id", "ts"),
        Index("ix_alarms_status_ts", "status", "ts"),
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
    # The workflow new -> notified -> rectifying -> closed; 整改告知书 number and each step's time.
    notice_no: Mapped[str | None] = mapped_column(String(64))
    notified_at: Mapped[dt.datetime | None]
    rectifying_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    # When the condition behind a device alarm ended (the camera came back online).
    cleared_at: Mapped[dt.datetime | None]


class SecurityEvent(Base):
    """A message from an unknown device, for another site, or a refused SIP authentication."""

    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(300))
    device_id: Mapped[str | None] = mapped_column(String(64))
    site_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)


class CoverageTarget(Base):
    """A plan target: coverage of licensed kitchens with cameras, or the devices' online rate."""

    __tablename__ = "coverage_targets"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(16))  # coverage | online_rate
    # Kitchen categories the target applies to; empty means every licensed kitchen.
    categories: Mapped[list[str]] = mapped_column(JSON)
    target: Mapped[float] = mapped_column(Float)
    due: Mapped[dt.date | None] = mapped_column(Date)


class StoredDay(Base):
    """A settled local day whose outages are stored: per device (DeviceDay), per kitchen site.

    The kitchens' rows are fangxin.trace.plan.models.CameraDaySite; both are written together.
    """

    __tablename__ = "stored_days"

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeviceDay(Base):
    """A device's offline seconds on a stored day its door observed: whole day, business hours."""

    __tablename__ = "device_days"

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    offline_s: Mapped[float] = mapped_column(Float)
    business_offline_s: Mapped[float] = mapped_column(Float)


class StoredDayStale(Base):
    """Times whose stored days are out of date: written by triggers (migration 0018)."""

    __tablename__ = "stored_day_stale"

    id: Mapped[int] = mapped_column(primary_key=True)
    lo_s: Mapped[float] = mapped_column(Float)
    hi_s: Mapped[float] = mapped_column(Float)
