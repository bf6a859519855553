"""The overview's 明厨亮灶 figures per district, by the same definitions as the KPIs."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from fangxin.devices.connectivity import ONLINE
from fangxin.devices.models import Device, Site
from fangxin.trace.plan import sources
from fangxin.trace.plan.camera_time import CAMERA_KINDS, site_seconds
from fangxin.trace.plan.kpis import camera_groups, internet_covered
from fangxin.trace.plan.targets import plan


def online_now(
    session: Session, now: dt.datetime, district: str | None
) -> dict[str, tuple[int, int]]:
    """Return kitchens' active cameras and NVRs per district, and how many are online now."""
    live = and_(Device.conn_state == ONLINE, or_(Device.deadline.is_(None), Device.deadline > now))
    rows = session.execute(
        select(Site.district, func.count(Device.id), func.sum(case((live, 1), else_=0)))
        .join(Site, Site.id == Device.site_id)
        .where(
            Site.kind == "kitchen",
            Device.kind.in_(CAMERA_KINDS),
            Device.active.is_(True),
            *([Site.district == district] if district else []),
        )
        .group_by(Site.district)
    )
    return {d: (int(n), int(o or 0)) for d, n, o in rows}


def kitchen_figures(
    session: Session,
    start: dt.datetime,
    now: dt.datetime,
    *,
    tz: str,
    district: str | None,
    share: float,
) -> dict[str, Any]:
    """Return per district: coverage, 互联网+ coverage, business-hours online rate, online now."""
    p = plan()
    last_day = now.astimezone(ZoneInfo(tz)).date()
    licences = sources.licences(session, last_day, district)
    seconds = site_seconds(session, start, now, now, tz=tz, business_hours=True, district=district)
    cameras = camera_groups(seconds)
    wanted = p.target("internet_mclz").categories
    covered = internet_covered(seconds, sources.connections(session, district), wanted, share)
    now_counts = online_now(session, now, district)
    rows: dict[str, dict[str, Any]] = {}
    for d in set(licences) | set(cameras) | set(now_counts):
        by_category = licences.get(d, {})
        n, c = sources.licensed_sum(by_category, p.target("mclz").categories)
        n3, _ = sources.licensed_sum(by_category, wanted)
        total, online = cameras.get(d, (0.0, 0.0))
        devices, live = now_counts.get(d, (0, 0))
        rows[d] = {
            "mclz": c / n if n else None,
            "licensed": n,
            "internet_mclz": covered.get(d, 0) / n3 if n3 else None,
            "internet_licensed": n3,
            "online_rate": online / total if total else None,
            "devices": devices,
            "online_now": live,
        }
    goals = {code: p.target(code).goal for code in ("mclz", "internet_mclz", "online_rate")}
    return {"rows": rows, "goals": goals, "as_of": now, "share": share}
