"""Pydantic models of sites and devices at the doors (HTTP, CLI, CSV import)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fangxin.contract.ids import Id
from fangxin.devices.gbcode import check_gb_id
from fangxin.devices.models import DEFAULT_MISSED_BEATS, MAX_MISSED_BEATS, MIN_MISSED_BEATS

SiteKind = Literal["market", "kitchen"]
DeviceKind = Literal["rapid_test", "camera", "nvr", "scale", "sensor"]
# Local time of day; 24:00 may close a day.
HourMinute = Annotated[str, Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")]
# Kitchen categories of the 明厨亮灶 plan (others are accepted: the list is not closed).
KITCHEN_CATEGORIES = (
    "中央厨房",
    "集体用餐配送单位",
    "学校食堂",
    "大型餐饮",
    "中小餐饮",
    "养老食堂",
)


class SiteIn(BaseModel):
    """A site to register; kitchens carry a category, licence number and business hours."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    kind: SiteKind
    district: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    category: Annotated[str, Field(max_length=32)] | None = None
    licence_no: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    opens: HourMinute | None = None
    closes: HourMinute | None = None


class SiteOut(SiteIn):
    """A registered site."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    created_at: dt.datetime


class DeviceIn(BaseModel):
    """A device to register."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    site: Id
    kind: DeviceKind
    interval_s: Annotated[int, Field(ge=1, le=86400)] = 60
    # 最大心跳超时次数: missed heartbeats after which the device is offline (platform side).
    missed_beats: Annotated[int, Field(ge=MIN_MISSED_BEATS, le=MAX_MISSED_BEATS)] = (
        DEFAULT_MISSED_BEATS
    )
    channel: Annotated[int, Field(ge=0, le=4096)] | None = None
    # GB/T 28181 国标编码 of a camera or NVR that registers over SIP.
    gb_id: str | None = None

    @field_validator("gb_id")
    @classmethod
    def _gb_id(cls, value: str | None) -> str | None:
        return None if value is None else check_gb_id(value)


class DeviceOut(BaseModel):
    """A registered device and its liveness as last seen."""

    id: str
    site: str
    kind: str
    interval_s: int
    # What the device announced in its latest status payload, before the per-kind cap.
    announced_interval_s: int | None = None
    missed_beats: int = DEFAULT_MISSED_BEATS
    active: bool
    online: bool
    last_seen_at: dt.datetime | None
    state: str | None
    channel: int | None = None
    online_since: dt.datetime | None = None
    offline_since: dt.datetime | None = None


class DeviceCreated(DeviceOut):
    """A device just registered, with its MQTT credentials (shown once)."""

    mqtt_username: str
    mqtt_password: str
    sip_password: str | None = None


class Credentials(BaseModel):
    """A device's new MQTT credentials (shown once)."""

    device: str
    mqtt_username: str
    mqtt_password: str
    sip_password: str | None = None


class RowError(BaseModel):
    """A refused row of an import, with its line number in the file."""

    line: int
    id: str | None
    error: str


class ImportResult(BaseModel):
    """What an import did: rows imported, each refused row, and the new credentials."""

    imported: int
    refused: int
    errors: list[RowError]
    credentials: list[Credentials]


class AlarmOut(BaseModel):
    """An alarm with its workflow steps."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    site_id: str
    alarm_id: str
    type: str
    ts: dt.datetime
    received_at: dt.datetime
    confidence: float | None
    snapshot_url: str | None
    status: str
    notice_no: str | None
    notified_at: dt.datetime | None
    rectifying_at: dt.datetime | None
    closed_at: dt.datetime | None
    resolution: str | None
    note: str | None
    cleared_at: dt.datetime | None


class AlarmStatusIn(BaseModel):
    """A step of the alarm workflow; notified may carry the 整改告知书 number (else generated)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["notified", "rectifying", "closed"]
    notice_no: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    resolution: Literal["rectified", "false_alarm"] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class TargetIn(BaseModel):
    """A new value of a plan target (coverage or online rate)."""

    model_config = ConfigDict(extra="forbid")

    target: Annotated[float, Field(ge=0, le=1)]
    due: dt.date | None = None
    categories: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = None


class TargetOut(BaseModel):
    """A plan target."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    metric: str
    categories: list[str]
    target: float
    due: dt.date | None


class ReportQuery(BaseModel):
    """Query of the uptime endpoints: window, scope, counted hours and export format."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: str | None = Field(None, alias="from")
    end: str | None = Field(None, alias="to")
    district: str | None = None
    category: str | None = None
    kind: str | None = None
    hours: Literal["all", "business"] = "all"
    format: Literal["json", "csv", "xlsx"] = "json"
    # The rows of a CSV/XLSX export: one per site (default) or per device.
    by: Literal["site", "device"] = "site"
    # v1 form: one table of the report as CSV with field keys as headers (kept for old clients).
    table: Literal["summary", "coverage", "sites"] | None = None
    n: int = Field(10, ge=1, le=1000)
