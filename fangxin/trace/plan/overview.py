"""The overview's 明厨亮灶 figures per district, by the same definitions as the KPIs."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fangxin.trace.plan import sources
from fangxin.trace.plan.camera_time import kitchen_cameras
from fangxin.trace.plan.kpis import camera_groups, internet_covered
from fangxin.trace.plan.targets import plan


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
    found = kitchen_cameras(session, start, now, now, tz=tz, business_hours=True, district=district)
    seconds, now_counts = found.seconds, found.now
    cameras = camera_groups(seconds)
    wanted = p.target("internet_mclz").categories
    covered = internet_covered(seconds, sources.connections(session, district), wanted, share)
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
