"""JSON API under /api/v1/plan: imports of the plan's data and the KPIs with their sources."""

from __future__ import annotations

import io
import json
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel

from fangxin.days import local_day
from fangxin.devices.importer import rows as csv_rows
from fangxin.service.auth import requires_role, scoped_district
from fangxin.service.context import db_session, state
from fangxin.service.openapi import Spec, json_response, path_param, query_param
from fangxin.service.problems import Problem, problem_response
from fangxin.trace.plan.imports import KINDS, ImportRefused, import_rows
from fangxin.trace.plan.kpis import kpis
from fangxin.trace.plan.rows import Kpi
from fangxin.trace.plan.schemas import Imported
from fangxin.trace.plan.targets import plan

bp = Blueprint("plan_api", __name__, url_prefix="/api/v1/plan")
MAX_ROWS = 100_000


def _body_rows() -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """Return the request's rows with their line numbers, and the source they name."""
    if request.mimetype == "text/csv":
        source = request.args.get("source", "").strip()
        text = request.get_data(as_text=True).lstrip("\ufeff")  # spreadsheets' BOM
        return [(line, dict(row)) for line, row in csv_rows(io.StringIO(text))], source
    try:
        body = json.loads(request.get_data(as_text=True) or "null")
    except ValueError as exc:
        raise Problem(400, "Invalid JSON", str(exc)) from exc
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        raise Problem(422, "Invalid request body", 'send {"source": "...", "rows": [{...}, ...]}')
    items = body["rows"]
    if not all(isinstance(item, dict) for item in items):
        raise Problem(422, "Invalid request body", "every row must be an object")
    return list(enumerate(items, start=1)), str(body.get("source") or "").strip()


@bp.post("/imports/<kind>")
@requires_role("admin")
def post_import(kind: str) -> Response:
    """Import rows of a kind (CSV or JSON); any bad row refuses the whole import (422)."""
    if kind not in KINDS:
        raise Problem(404, "Not Found", f"kind must be one of {', '.join(KINDS)}")
    rows, source = _body_rows()
    if not source and kind != "populations":
        raise Problem(422, "Invalid request body", "name the source (document, office, date)")
    if len(rows) > MAX_ROWS:
        raise Problem(413, "Too many rows", f"at most {MAX_ROWS} rows per import")
    session = db_session()
    try:
        result = import_rows(session, kind, rows, source, state().clock())
    except ImportRefused as exc:
        session.rollback()
        errors = [p.model_dump() for p in exc.problems]
        return problem_response(
            422,
            "Rows refused",
            f"{len(errors)} row(s) refused; nothing was imported",
            errors=errors,
        )
    session.commit()
    state().figures.clear()  # the dashboard's cached figures would hide the new data
    return jsonify(result.model_dump())


class KpiOut(BaseModel):
    """One district's figure against its target, with where the rule and data come from."""

    district: str
    code: str
    name: str
    clause: str
    quote: str
    definition: str
    numerator: float | None
    numerator_source: str
    denominator: float | None
    denominator_source: str
    period: str
    value: float | None
    missing: str | None
    goal: float | None
    local_goal: bool
    met: bool | None
    unit: str


def _out(k: Kpi) -> dict[str, Any]:
    t = k.target
    share = state().settings.internet_mclz_min_share
    return KpiOut(
        district=k.district,
        code=t.code,
        name=t.name,
        clause=t.clause,
        quote=t.quote,
        definition=t.definition.replace("{share}", f"{share * 100:g}%"),
        numerator=k.numerator,
        numerator_source=t.numerator,
        denominator=k.denominator,
        denominator_source=t.denominator,
        period=k.period,
        value=k.value,
        missing=k.missing,
        goal=k.goal,
        local_goal=k.local,
        met=k.met,
        unit=t.unit,
    ).model_dump()


@bp.get("/kpis")
@requires_role("regulator")
def get_kpis() -> Response:
    """Return the year's KPIs per district (a district key: its own)."""
    now, settings = state().clock(), state().settings
    this_year = local_day(now, settings.timezone)[0].year  # the plan's years are local
    try:
        year = int(request.args.get("year", this_year))
    except ValueError as exc:
        raise Problem(400, "Bad Request", "year must be a number") from exc
    if not plan().first_year <= year <= this_year:
        raise Problem(404, "Not Found", f"years {plan().first_year}..{this_year}")
    district = scoped_district(request.args.get("district"))
    rows = kpis(
        db_session(),
        year,
        now,
        tz=settings.timezone,
        district=district,
        share=settings.internet_mclz_min_share,
    )
    return jsonify({"plan": plan().title, "year": year, "kpis": [_out(k) for k in rows]})


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    spec.add(
        "post",
        "/api/v1/plan/imports/{kind}",
        "Import licences, sampling (抽检) counts, 明厨亮灶 forms, populations or figures "
        '(CSV with ?source=, or JSON {"source", "rows"}); a bad row refuses all (422)',
        {"200": json_response(spec.ref(Imported))},
        params=[path_param("kind")],
    )
    spec.add(
        "get",
        "/api/v1/plan/kpis",
        "KPIs against the plan per district, with clause, definition and sources",
        {
            "200": json_response(
                {
                    "type": "object",
                    "properties": {"kpis": {"type": "array", "items": spec.ref(KpiOut)}},
                }
            )
        },
        params=[query_param("year"), query_param("district")],
    )
