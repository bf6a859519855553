"""Regulators' device API: uptime, reports, offline now, worst, alarms, import, credentials."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from fangxin.days import WindowError, resolve
from fangxin.devices import alarms, registry
from fangxin.devices.fleet import Filters, fleet_figures
from fangxin.devices.importer import import_devices
from fangxin.devices.models import Alarm, CoverageTarget, Site
from fangxin.devices.report import device_uptime, offline_now, uptime_report, worst
from fangxin.devices.schemas import (
    AlarmOut,
    AlarmStatusIn,
    Credentials,
    ImportResult,
    ReportQuery,
    TargetIn,
    TargetOut,
)
from fangxin.service import bodies
from fangxin.service.auth import check_district, current_principal, requires_role, scoped_district
from fangxin.service.context import db_session, state
from fangxin.service.downloads import uptime_download
from fangxin.service.openapi import Spec, json_response, path_param, query_param
from fangxin.service.paging import LINK_HEADER, PAGE_PARAMS, page_args, page_of, paged
from fangxin.service.problems import Problem, parse_body, problem_response

bp = Blueprint("devices_api", __name__, url_prefix="/api/v1")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _query() -> ReportQuery:
    paging = ("limit", "cursor", "offset")
    query = ReportQuery.model_validate({k: v for k, v in request.args.items() if k not in paging})
    query.district = scoped_district(query.district)  # a district office sees its own only
    return query


def _window(query: ReportQuery, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    try:
        return resolve(query.start, query.end, now, state().settings.timezone)
    except WindowError as exc:
        raise Problem(400, "Bad window", str(exc)) from exc


def _report_options(query: ReportQuery) -> dict[str, Any]:
    """Return the keyword arguments every fleet report takes from the query."""
    return {
        "tz": state().settings.timezone,
        "business_hours": query.hours == "business",
        "filters": Filters(query.district, query.category, query.kind),
    }


def _in_scope(site: Site) -> None:
    refusal = Problem(404, "Not Found", "no such device or alarm in this key's district")
    check_district(current_principal(), site.district, refusal)


@bp.errorhandler(alarms.WorkflowError)
def _illegal(exc: alarms.WorkflowError) -> Response:
    return problem_response(409, "Illegal alarm transition", str(exc))


@bp.get("/devices/<device_id>/uptime")
@requires_role("regulator")
def device_uptime_view(device_id: str) -> Response:
    """One device's online, offline and unknown seconds, uptime and offline periods."""
    session, now, query = db_session(), state().clock(), _query()
    found = alarms.device_site(session, device_id)
    if found is None:
        raise registry.NotFound(f"device {device_id} is not registered")
    device, site = found
    _in_scope(site)
    start, end = _window(query, now)
    body = device_uptime(
        session,
        device,
        site,
        start,
        end,
        now,
        tz=state().settings.timezone,
        business_hours=query.hours == "business",
    )
    return jsonify(body)


@bp.get("/uptime")
@requires_role("regulator")
def uptime_view() -> Response:
    """Report online rate and coverage per district and category against the targets."""
    session, now, query = db_session(), state().clock(), _query()
    start, end = _window(query, now)
    report = uptime_report(session, start, end, now, **_report_options(query))
    if query.format != "json":
        return uptime_download(report, query, state().settings.timezone)
    return jsonify(report)


@bp.get("/uptime/worst")
@requires_role("regulator")
def worst_view() -> Response:
    """List the N devices and N sites with the lowest uptime in the window."""
    session, now, query = db_session(), state().clock(), _query()
    start, end = _window(query, now)
    fleet = fleet_figures(session, start, end, now, **_report_options(query))
    return jsonify(
        {"from": fleet.start.isoformat(), "to": fleet.end.isoformat(), **worst(fleet, query.n)}
    )


@bp.get("/devices/offline")
@requires_role("regulator")
def offline_view() -> Response:
    """Active devices offline now, longest outage first."""
    query = _query()
    filters, page = Filters(query.district, query.category, query.kind), page_args()
    return paged(page_of(offline_now(db_session(), state().clock(), filters), page), page)


@bp.get("/uptime/targets")
@requires_role("regulator")
def targets_view() -> Response:
    """List the plan's coverage and online-rate targets."""
    page = page_args()
    rows = db_session().scalars(
        select(CoverageTarget).order_by(CoverageTarget.code).offset(page.offset).limit(page.fetch)
    )
    return paged([TargetOut.model_validate(t).model_dump(mode="json") for t in rows], page)


@bp.put("/uptime/targets/<code>")
@requires_role("admin")
def set_target(code: str) -> Response:
    """Change a target's value, due date or categories."""
    session = db_session()
    target = session.get(CoverageTarget, code)
    if target is None:
        raise Problem(404, "Not Found", f"no target {code}")
    data = parse_body(TargetIn)
    target.target, target.due = data.target, data.due
    if data.categories is not None:
        target.categories = data.categories
    session.commit()
    return jsonify(TargetOut.model_validate(target).model_dump(mode="json"))


def _alarm_json(alarm: Alarm, site: Site) -> dict[str, Any]:
    return {
        **AlarmOut.model_validate(alarm).model_dump(mode="json"),
        "type_name": alarms.type_name(alarm.type),
        "category": alarms.category_of(alarm.type),
        "site_name": site.name,
        "district": site.district,
    }


@bp.get("/alarms")
@requires_role("regulator")
def alarms_view() -> Response:
    """Alarms newest first, filtered by district, site, status, category (ai|device), type."""
    args = request.args
    district = scoped_district(args.get("district"))
    tz, now = state().settings.timezone, state().clock()
    try:
        since = resolve(args["from"], None, now, tz)[0] if "from" in args else None
        until = resolve(None, args["to"], now, tz)[1] if "to" in args else None
    except (WindowError, ValueError) as exc:
        raise Problem(400, "Bad query", str(exc)) from exc
    stmt = alarms.alarms_query(
        district=district,
        site=args.get("site"),
        status=args.get("status"),
        category=args.get("category"),
        alarm_type=args.get("type"),
        since=since,
        until=until,
    )
    page = page_args()
    rows = db_session().execute(stmt.limit(page.fetch).offset(page.offset))
    return paged([_alarm_json(alarm, site) for alarm, site in rows], page)


def _alarm(alarm_pk: int) -> tuple[Alarm, Site]:
    row = (
        db_session()
        .execute(
            select(Alarm, Site).join(Site, Site.id == Alarm.site_id).where(Alarm.id == alarm_pk)
        )
        .first()
    )
    if row is None:
        raise Problem(404, "Not Found", f"no alarm {alarm_pk}")
    _in_scope(row[1])
    return row[0], row[1]


@bp.get("/alarms/<int:alarm_pk>")
@requires_role("regulator")
def alarm_view(alarm_pk: int) -> Response:
    """One alarm with its workflow steps."""
    return jsonify(_alarm_json(*_alarm(alarm_pk)))


@bp.post("/alarms/<int:alarm_pk>/status")
@requires_role("regulator")
def alarm_status(alarm_pk: int) -> Response:
    """Move an alarm along new -> notified (整改告知书) -> rectifying -> closed; else 409."""
    data = parse_body(AlarmStatusIn)
    alarm, site = _alarm(alarm_pk)
    alarms.change_status(
        alarm,
        data.status,
        state().clock(),
        tz=state().settings.timezone,
        notice_no=data.notice_no,
        resolution=data.resolution,
        note=data.note,
    )
    db_session().commit()
    return jsonify(_alarm_json(alarm, site))


@bp.post("/devices/import")
@requires_role("admin")
def import_view() -> tuple[Response, int]:
    """Import devices from a CSV body; each bad row is reported, the others imported."""
    text = request.get_data(as_text=True).lstrip("\ufeff")
    if not text.strip():
        raise Problem(400, "Bad Request", "send the CSV (id,site,kind[,interval_s,channel])")
    session = db_session()
    result = import_devices(
        session, text.splitlines(), state().clock(), sip_realm=state().settings.sip_realm
    )
    session.commit()
    return jsonify(result.model_dump(mode="json")), 200 if result.imported else 422


@bp.post("/devices/<device_id>/credentials")
@requires_role("admin")
def rotate_view(device_id: str) -> Response:
    """Give a device a new MQTT password (shown once)."""
    session = db_session()
    created = registry.rotate_credentials(session, device_id, state().clock())
    session.commit()
    return jsonify(created.model_dump())


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    window = [query_param(n) for n in ("from", "to")]
    window.append(query_param("hours", {"enum": ["all", "business"]}))
    scope = [query_param(n) for n in ("district", "category", "kind")]
    report = [
        *window,
        *scope,
        query_param("format", {"enum": ["json", "csv", "xlsx"]}),
        query_param("by", {"enum": ["site", "device"]}),
        query_param("table", {"enum": ["summary", "coverage", "sites"]}),
    ]
    alarm_query = ("district", "site", "status", "category", "type", "from", "to")
    alarm = spec.ref(AlarmOut)
    target = spec.ref(TargetOut)
    csv_body = {"type": "string", "contentMediaType": "text/csv"}
    operations: list[tuple[str, str, str, dict[str, Any], Any, list[dict[str, Any]]]] = [
        ("get", "/devices/{device_id}/uptime", "A device's uptime and offline periods",
         bodies.DEVICE_UPTIME,
         None, [path_param("device_id"), *window]),
        ("get", "/uptime", "Uptime report by district and category (JSON, CSV, XLSX)",
         bodies.UPTIME_REPORT,
         None, report),
        ("get", "/uptime/worst", "The N worst devices and sites", bodies.WORST,
         None, [*window, *scope, query_param("n", {"type": "integer"})]),
        ("get", "/devices/offline", "Devices offline now", bodies.array(bodies.OFFLINE_DEVICE),
         None, [*scope, *PAGE_PARAMS]),
        ("get", "/uptime/targets", "Plan targets", bodies.array(target), None, PAGE_PARAMS),
        ("put", "/uptime/targets/{code}", "Change a plan target", target,
         TargetIn, [path_param("code")]),
        ("get", "/alarms", "Alarms, newest first", bodies.array(alarm),
         None, [*(query_param(n) for n in alarm_query), *PAGE_PARAMS]),
        ("get", "/alarms/{alarm_pk}", "One alarm", alarm, None, [path_param("alarm_pk")]),
        ("post", "/alarms/{alarm_pk}/status", "Alarm workflow step (409 when illegal)", alarm,
         AlarmStatusIn, [path_param("alarm_pk")]),
        ("post", "/devices/import", "Import devices from a CSV body", spec.ref(ImportResult),
         csv_body, []),
        ("post", "/devices/{device_id}/credentials", "Rotate a device's MQTT password",
         spec.ref(Credentials), None, [path_param("device_id")]),
    ]  # fmt: skip
    for method, path, summary, schema, body, params in operations:
        ok = json_response(schema)
        if PAGE_PARAMS[0] in params:
            ok["headers"] = LINK_HEADER
        spec.add(method, f"/api/v1{path}", summary, {"200": ok}, body=body, params=params)
    # An import that imported nothing answers 422 with the same per-row report; the body is CSV.
    imports = spec.paths["/api/v1/devices/import"]["post"]
    imports["responses"]["422"] = json_response(spec.ref(ImportResult), "No row imported")
    imports["requestBody"]["content"] = {"text/csv": {"schema": {"type": "string"}}}
    files = {"text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": {"type": "string"}}}
    spec.paths["/api/v1/uptime"]["get"]["responses"]["200"]["content"].update(files)
