"""The page of a kitchen (明厨亮灶): cameras, uptime against business hours, outages, alarms."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.days import local_day
from fangxin.devices import alarms, registry
from fangxin.devices.fleet import Filters, fleet_figures
from fangxin.devices.models import CAMERA_KINDS, CoverageTarget, Site
from fangxin.devices.timeline import devices_uptime
from fangxin.devices.uptime import Figures

WINDOWS = (("今日", 0), ("近7日", 7), ("近30日", 30))
OUTAGE_ROWS = 50


def _uptime(session: Session, site: Site, start: dt.datetime, now: dt.datetime, tz: str) -> Any:
    fleet = fleet_figures(
        session, start, now, now, tz=tz, business_hours=True, filters=Filters(site=site.id)
    )
    cams = [d for d in fleet.devices if d.kind in CAMERA_KINDS]
    per_device = {d.device_id: d.figures for d in cams}
    return sum((d.figures for d in cams), Figures()), per_device


def period_rows(report: dict[str, Any], device_id: str) -> list[dict[str, Any]]:
    """Return the device's offline and unknown periods as table rows, one classification."""
    rows = [{"device": device_id, "state": "offline", **p} for p in report["offline_periods"]]
    rows += [
        {"device": device_id, "state": "unknown", "cause": None, "seconds": None, **p}
        for p in report["unknown_periods"]
    ]
    return sorted(rows, key=lambda p: p["from"], reverse=True)


def form_of(session: Session, site: Site, cameras: int) -> str:
    """Return the kitchen's 明厨亮灶 form as the plan names it."""
    targets = session.scalars(select(CoverageTarget).where(CoverageTarget.metric == "coverage"))
    internet = any(t.code == "internet_mclz" and site.category in t.categories for t in targets)
    if cameras == 0:
        return "明厨亮灶（未接入视频）"
    scope = "，属互联网+明厨亮灶考核范围" if internet else ""
    return f"互联网+明厨亮灶（{cameras} 路视频接入监管平台{scope}）"


def kitchen_context(session: Session, site: Site, now: dt.datetime, tz: str) -> dict[str, Any]:
    """Return what the kitchen page shows."""
    devices = registry.list_devices(session, site.id)
    cameras = [d for d in devices if d.kind in CAMERA_KINDS]
    _, today, _ = local_day(now, tz)
    windows = []
    for label, days in WINDOWS:
        start = today if days == 0 else now - dt.timedelta(days=days)
        total, per_device = _uptime(session, site, start, now, tz)
        windows.append({"label": label, "total": total, "devices": per_device})
    week = now - dt.timedelta(days=7)
    timelines, periods = [], []
    reports = devices_uptime(session, cameras, site, week, now, now, tz=tz, business_hours=False)
    for camera, report in zip(cameras, reports, strict=True):
        timelines.append((camera, report))
        periods += period_rows(report, camera.id)
    periods.sort(key=lambda p: p["from"], reverse=True)
    rows = session.execute(alarms.alarms_query(site=site.id).limit(50)).all()
    return {
        "cameras": [registry.device_out(d, now) for d in cameras],
        "others": [registry.device_out(d, now) for d in devices if d.kind not in CAMERA_KINDS],
        "windows": windows,
        "timelines": timelines,
        "periods": periods[:OUTAGE_ROWS],
        "week": week,
        "site_alarms": [a for a, _ in rows],
        "form": form_of(session, site, len(cameras)),
        "hours": f"{site.opens}–{site.closes}",
    }
