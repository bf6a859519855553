"""The dashboard's pages: overview, charts, site, device and KPIs (routes on pages.bp)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask, Response, abort, render_template, request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.days import WindowError, last_days, local_day, resolve
from fangxin.devices import alarms, registry
from fangxin.devices.fleet import Filters
from fangxin.devices.labels import BEAT_FIELDS
from fangxin.devices.models import Alarm, Site
from fangxin.devices.report import device_uptime, uptime_report
from fangxin.devices.schemas import ReportQuery
from fangxin.ingest.models import SeriesPoint
from fangxin.service.auth import in_scope
from fangxin.service.context import db_session, state
from fangxin.service.downloads import uptime_download
from fangxin.service.pages import (
    charts,
    dashboard,
    entry_pages,  # noqa: F401  (its routes are on this blueprint)
    figures,
    kitchen,
)
from fangxin.service.pages import followups as followups  # its routes join the blueprint
from fangxin.service.pages import kpi as kpi_routes  # noqa: F401 (its routes join bp)
from fangxin.service.pages.dashboard import (
    bp,
    local_time,
    login_required,
    tz,
    viewer,
    visible_site,
)
from fangxin.trace.certificates import label_render, labels
from fangxin.trace.certificates.models import Certificate, Subject
from fangxin.trace.certificates.views import scan_url
from fangxin.trace.results.followup_rules import OPEN_CASE
from fangxin.trace.results.models import RapidTestResult, TestItem
from fangxin.trace.results.queries import day_figures
from fangxin.trace.results.views import list_followups
from fangxin.trace.site_status import site_status

TREND_DAYS = 30
CHARTS = {
    "uptime": ("设备在线时长占比", "%"),
    "negative_rate": ("快检阴性率", "%"),
    "tests": ("快检批次", "批次/日"),
}
WINDOWS = {"1": 1, "7": 7, "30": 30}


@bp.get("/")
@login_required
def overview() -> str:
    """Show the city (or the viewer's district): markets, kitchens, trends, alerts."""
    session, now, scope = db_session(), state().clock(), viewer().district
    _, start, end = local_day(now, tz())
    return render_template(
        "dash_overview.html",
        now=now,
        districts=figures.districts(session, scope),
        markets=figures.markets(session, start, end, scope),
        kitchens=figures.kitchens(session, now, tz(), scope),
        inbox=figures.inbox(session, now, scope),
        charts=CHARTS,
        type_name=alarms.type_name,
    )


@bp.get("/charts/<metric>.svg")
@login_required
def chart(metric: str) -> Response:
    """Render a 30-day trend of the viewer's scope as SVG."""
    if metric not in CHARTS:
        abort(404)
    now = state().clock()
    _, today_start, _ = local_day(now, tz())
    bounds = last_days(today_start, TREND_DAYS)
    district = viewer().district

    def draw() -> bytes:
        data = state().figures.get(
            ("trends", district, bounds[0][1]),
            lambda: figures.trends(db_session(), bounds, now, district),
        )
        values = data[metric]
        if CHARTS[metric][1] == "%":
            values = [None if v is None else round(v * 100, 2) for v in values]
        labels = [local_time(a, "%m-%d") for _, a, _ in bounds]
        title, unit = CHARTS[metric]
        note = f"{district or '全市'} · 时区 {tz()} · 数据时间 {local_time(now)}"
        return charts.line_svg(title, unit, labels, {title: values}, note)

    # Drawing the SVG costs more than the figures: it is kept as long as they are.
    body = state().figures.get(("chart", metric, district, bounds[0][1]), draw)
    return Response(
        body, mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=60"}
    )


@bp.get("/sites/<site_id>")
@login_required
def site_page(site_id: str) -> str:
    """Show a site's status, devices, open alarms and today's results."""
    session, now = db_session(), state().clock()
    site = visible_site(session.get(Site, site_id))
    if site.kind == "kitchen":
        return _kitchen_page(session, site, now)
    status = site_status(session, site, now, tz())
    _, start, end = local_day(now, tz())
    batches = day_figures(session, site.id, start, end)
    devices = [registry.device_out(d, now) for d in registry.list_devices(session, site.id)]
    open_alarms = session.execute(
        alarms.alarms_query(site=site.id).where(Alarm.status != "closed").limit(50)
    ).all()
    items = {code: name for code, name in session.execute(select(TestItem.code, TestItem.name_zh))}
    results = session.scalars(
        select(RapidTestResult)
        .where(
            RapidTestResult.site_id == site.id,
            RapidTestResult.ts >= start,
            RapidTestResult.ts < end,
        )
        .order_by(RapidTestResult.ts.desc())
        .limit(100)
    ).all()
    return render_template(
        "dash_site.html",
        site=site,
        status=status,
        batches=batches,
        devices=devices,
        alarms=[a for a, _ in open_alarms],
        results=results,
        items=items,
        now=now,
        type_name=alarms.type_name,
        cases=list_followups(session, site_id=site.id, states=sorted(OPEN_CASE), limit=50),
    )


def _kitchen_page(session: Session, site: Site, now: dt.datetime) -> str:
    """Render a kitchen's 明厨亮灶 page."""
    context = kitchen.kitchen_context(session, site, now, tz())
    bands = {
        camera.id: _bands(report, context["week"], now) for camera, report in context["timelines"]
    }
    return render_template(
        "dash_kitchen.html",
        site=site,
        now=now,
        bands=bands,
        type_name=alarms.type_name,
        **context,
    )


def _bands(report: dict[str, Any], start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Place offline and unknown periods on a 0-1000 axis of the window for the timeline."""
    span = max((end - start).total_seconds(), 1.0)
    out = []
    for kind, rows in (
        ("offline", report["offline_periods"]),
        ("unknown", report["unknown_periods"]),
    ):
        for row in rows:
            a = max(dt.datetime.fromisoformat(row["from"]), start)
            b = min(dt.datetime.fromisoformat(row["to"]) if row["to"] else end, end)
            if b <= a:
                continue
            x = (a - start).total_seconds() / span * 1000
            w = max((b - a).total_seconds() / span * 1000, 1.0)
            out.append({"kind": kind, "x": round(x, 2), "w": round(w, 2), "from": a, "to": b})
    return out


@bp.get("/devices/<device_id>")
@login_required
def device_page(device_id: str) -> str:
    """Show a device's uptime timeline over a window, recent heartbeats and alarms."""
    session, now = db_session(), state().clock()
    found = alarms.device_site(session, device_id)
    device, site = found if found else (None, None)
    site = visible_site(site)
    assert device is not None
    days = WINDOWS.get(request.args.get("days", "1"), 1)
    start = now - dt.timedelta(days=days)
    report = device_uptime(session, device, site, start, now, now, tz=tz(), business_hours=False)
    key = f"device={device.id},kind={device.kind},site={site.id}"
    beats = session.scalars(
        select(SeriesPoint)
        .where(SeriesPoint.measurement == "device_status", SeriesPoint.series_key == key)
        .order_by(SeriesPoint.ts.desc())
        .limit(20)
    ).all()
    device_alarms = session.execute(
        alarms.alarms_query(site=site.id).where(Alarm.device_id == device.id).limit(20)
    ).all()
    return render_template(
        "dash_device.html",
        device=registry.device_out(device, now),
        site=site,
        report=report,
        bands=_bands(report, start, now),
        periods=kitchen.period_rows(report, device.id),
        beat_fields=BEAT_FIELDS,
        days=days,
        start=start,
        now=now,
        beats=beats,
        alarms=[a for a, _ in device_alarms],
        type_name=alarms.type_name,
    )


@bp.get("/uptime.<fmt>")
@login_required
def uptime_file(fmt: str) -> Response:
    """Download the uptime report (per site, or per device with ?by=device) as the API gives it."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    try:
        query = ReportQuery.model_validate({**request.args.to_dict(), "format": fmt})
        start, end = resolve(query.start, query.end, state().clock(), tz())
    except (ValidationError, WindowError):
        abort(400)
    if query.district and not in_scope(viewer().district, query.district):
        abort(403)
    filters = Filters(query.district or viewer().district, query.category, query.kind)
    business = query.hours == "business"
    now = state().clock()
    report = uptime_report(
        db_session(), start, end, now, tz=tz(), business_hours=business, filters=filters
    )
    return uptime_download(report, query, tz())


@bp.get("/labels/<number>.pdf")
@login_required
def label_pdf(number: str) -> Response:
    """Print a 合格证's label (PDF, smallest size that fits) for a regulator of its district."""
    session = db_session()
    cert = session.scalar(select(Certificate).where(Certificate.number == number))
    subject = session.get(Subject, cert.subject_id) if cert else None
    if cert is None or subject is None or not in_scope(viewer().district, subject.district):
        abort(404)
    settings = state().settings
    data = labels.label_data(cert, scan_url(settings, cert), settings.timezone)
    try:  # the smallest label that prints every required field whole
        out = labels.layout(data, None, 203)
    except labels.LabelTooSmall as exc:
        return Response(f"无法打印：{exc}", status=422, mimetype="text/plain")
    return Response(label_render.render_pdf(out, cert.number), mimetype="application/pdf")


def init_app(app: Flask) -> None:
    """Register the dashboard: login pages (dashboard.py) and these views share one blueprint."""
    dashboard.init_app(app)
