"""Alarms: AI and device types, offline and storage alarms, the rectification workflow.

The workflow is new -> notified (整改告知书 issued) -> rectifying -> closed; a false alarm may be
closed straight from new. Each step keeps its time, the notice keeps its number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, Select, Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from fangxin.db.bulk import insert_ignore
from fangxin.devices.models import Alarm, Device, Site
from fangxin.devices.status import StatusContext

AI_TYPES = {
    "no_mask": "未戴口罩",
    "no_chef_hat": "未戴厨师帽",
    "no_uniform": "未穿工作服",
    "bare_chested": "赤膊",
    "smoking": "吸烟",
    "phone_use": "玩手机",
    "rodent": "鼠患",
    "flame_unattended": "动火离人",
    "stranger": "陌生人闯入",
    "wet_floor": "地面积水",
    "bin_overflow": "垃圾桶满溢",
}
DEVICE_TYPES = {
    "offline": "设备离线",
    "tamper": "设备被破坏",
    "occlusion": "镜头遮挡",
    "storage_low": "存储空间不足",
}
STATUSES = ("new", "notified", "rectifying", "closed")
# status -> statuses it may move to
NEXT = {"new": ("notified", "closed"), "notified": ("rectifying",), "rectifying": ("closed",)}
RESOLUTIONS = ("rectified", "false_alarm")
_alarms = cast(Table, Alarm.__table__)


class WorkflowError(ValueError):
    """A status change the workflow does not allow."""


def category_of(alarm_type: str) -> str:
    """Return ai, device or other for an alarm type."""
    if alarm_type in AI_TYPES:
        return "ai"
    return "device" if alarm_type in DEVICE_TYPES else "other"


def type_name(alarm_type: str) -> str:
    """Return the Chinese name of an alarm type (the code itself when unknown)."""
    return AI_TYPES.get(alarm_type) or DEVICE_TYPES.get(alarm_type) or alarm_type


def notice_number(alarm: Alarm, now: dt.datetime, tz: str) -> str:
    """Return a rectification notice number unique to the alarm: ZG<local date>-<alarm id>."""
    return f"ZG{now.astimezone(ZoneInfo(tz)):%Y%m%d}-{alarm.id:06d}"


def change_status(
    alarm: Alarm,
    to: str,
    now: dt.datetime,
    *,
    tz: str = "Asia/Shanghai",
    notice_no: str | None = None,
    resolution: str | None = None,
    note: str | None = None,
) -> Alarm:
    """Move an alarm one step along the workflow, stamping the step's time."""
    if to not in NEXT.get(alarm.status, ()):
        allowed = ", ".join(NEXT.get(alarm.status, ())) or "nothing (it is closed)"
        raise WorkflowError(f"alarm {alarm.id} is {alarm.status}; it may move to {allowed}")
    if to == "notified":
        alarm.notice_no = notice_no or notice_number(alarm, now, tz)
        alarm.notified_at = now
    elif to == "rectifying":
        alarm.rectifying_at = now
    else:
        if alarm.status == "new" and resolution != "false_alarm":
            raise WorkflowError("an alarm closes without a notice only as a false_alarm")
        alarm.resolution = resolution or "rectified"
        alarm.closed_at = now
    if note:
        alarm.note = f"{alarm.note}\n{note}" if alarm.note else note
    alarm.status = to
    return alarm


def alarms_query(
    *,
    district: str | None = None,
    site: str | None = None,
    status: str | None = None,
    category: str | None = None,
    alarm_type: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Select[Alarm, Site]:
    """Build the query of alarms with their sites, newest first, filtered as asked."""
    stmt = select(Alarm, Site).join(Site, Site.id == Alarm.site_id)
    if district:
        stmt = stmt.where(Site.district == district)
    if site:
        stmt = stmt.where(Alarm.site_id == site)
    if status:
        stmt = stmt.where(Alarm.status == status)
    if category == "ai":
        stmt = stmt.where(Alarm.type.in_(AI_TYPES))
    elif category == "device":
        stmt = stmt.where(Alarm.type.in_(DEVICE_TYPES))
    if alarm_type:
        stmt = stmt.where(Alarm.type == alarm_type)
    if since:
        stmt = stmt.where(Alarm.ts >= since)
    if until:
        stmt = stmt.where(Alarm.ts < until)
    return stmt.order_by(Alarm.ts.desc(), Alarm.id.desc())


def raise_offline_alarms(
    session: Session,
    devices: Sequence[tuple[str, str, dt.datetime]],
    now: dt.datetime,
    alarm_after: dt.timedelta,
) -> int:
    """Raise one `offline` alarm per outage (device, site, outage start); dedupe on the start."""
    rows = [
        {
            "device_id": device_id,
            "site_id": site_id,
            "alarm_id": f"offline-{since.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}",
            "ts": since,
            "received_at": now,
            "type": "offline",
            "status": "new",
            "extra": {
                "offline_since": since.isoformat(),
                "threshold_s": alarm_after.total_seconds(),
            },
        }
        for device_id, site_id, since in devices
    ]
    insert_ignore(session, _alarms, rows, ("device_id", "alarm_id"))
    return len(rows)


def clear_offline_alarms(session: Session, back: Sequence[tuple[str, dt.datetime]]) -> None:
    """Stamp when devices came back on their open offline alarms."""
    if back:
        session.execute(
            update(_alarms)
            .where(
                _alarms.c.device_id == bindparam("did"),
                _alarms.c.type == "offline",
                _alarms.c.cleared_at.is_(None),
            )
            .values(cleared_at=bindparam("at")),
            [{"did": did, "at": at} for did, at in back],
        )


def storage_alarms(
    session: Session,
    readings: Sequence[tuple[str, str, float, dt.datetime]],
    threshold_gb: float,
    now: dt.datetime,
) -> int:
    """Raise `storage_low` for (site, device, free GB, ts) readings under the threshold.

    One alarm per device until it clears: a low reading while one is open adds nothing; a
    reading at or above the threshold clears the open one.
    """
    low = {device: (site, free, ts) for site, device, free, ts in readings if free < threshold_gb}
    fine = {device: ts for _, device, free, ts in readings if free >= threshold_gb}
    if not readings:
        return 0
    open_ = set(
        session.scalars(
            select(Alarm.device_id).where(
                Alarm.device_id.in_({r[1] for r in readings}),
                Alarm.type == "storage_low",
                Alarm.cleared_at.is_(None),
            )
        )
    )
    clear = [{"did": d, "at": ts} for d, ts in fine.items() if d in open_ and d not in low]
    if clear:
        session.execute(
            update(_alarms)
            .where(
                _alarms.c.device_id == bindparam("did"),
                _alarms.c.type == "storage_low",
                _alarms.c.cleared_at.is_(None),
            )
            .values(cleared_at=bindparam("at")),
            clear,
        )
    rows: list[dict[str, Any]] = [
        {
            "device_id": device,
            "site_id": site,
            "alarm_id": f"storage_low-{ts.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}",
            "ts": ts,
            "received_at": now,
            "type": "storage_low",
            "status": "new",
            "extra": {"storage_free_gb": free, "threshold_gb": threshold_gb},
        }
        for device, (site, free, ts) in low.items()
        if device not in open_
    ]
    insert_ignore(session, _alarms, rows, ("device_id", "alarm_id"))
    return len(rows)


def device_site(session: Session, device_id: str) -> tuple[Device, Site] | None:
    """Return a device with its site."""
    row = session.execute(
        select(Device, Site).join(Site, Site.id == Device.site_id).where(Device.id == device_id)
    ).first()
    return (row[0], row[1]) if row else None


@cache
def _status_query() -> Executable:
    """Build once the status section's one query."""
    today = and_(Alarm.ts >= bindparam("start"), Alarm.ts < bindparam("end"))
    is_open = Alarm.status != "closed"
    return (
        select(
            Alarm.type,
            func.sum(case((is_open, 1), else_=0)),
            func.sum(case((today, 1), else_=0)),
        )
        .where(Alarm.site_id == bindparam("site"), or_(is_open, today))
        .group_by(Alarm.type)
    )


def status_section(ctx: StatusContext) -> dict[str, Any]:
    """Status keys about the site's alarms: open ones, and today's by category (one query)."""
    params = {"site": ctx.site.id, "start": ctx.day_start, "end": ctx.day_end}
    rows = ctx.session.execute(_status_query(), params).all()
    open_ = sum(int(n or 0) for _, n, _ in rows)
    by_category: dict[str, int] = {}
    for alarm_type, _, n in rows:
        if n:
            category = category_of(alarm_type)
            by_category[category] = by_category.get(category, 0) + int(n)
    return {"alarms": {"open": open_ or 0, "today": by_category}}
