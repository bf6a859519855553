"""Rapid-test results over HTTP: the lab door, a market's day, the public board, exports."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    jsonify,
    render_template,
    request,
)
from sqlalchemy.orm import Session

from fangxin.contract.payloads import PayloadError, SiteResultPayload, validate_elements
from fangxin.days import day_bounds, local_day
from fangxin.devices import registry
from fangxin.devices.models import Site
from fangxin.ingest.pipeline import Pipeline
from fangxin.service import bodies
from fangxin.service.auth import check_site, current_principal, requires_role, scoped_district
from fangxin.service.context import MAX_RESULTS, db_session, read_session, state
from fangxin.service.openapi import Spec, json_response, path_param, query_param
from fangxin.service.problems import Problem, problem_response
from fangxin.trace.notify.dispatch import BackgroundSender
from fangxin.trace.notify.webhooks import ENQUEUED_KEY
from fangxin.trace.results import exports
from fangxin.trace.results.basis import board_basis
from fangxin.trace.results.province import to_result
from fangxin.trace.results.queries import day_figures
from fangxin.trace.results.schemas import ResultOut
from fangxin.trace.results.views import is_positive_batch, results_between

bp = Blueprint("results_api", __name__)
MAX_EXPORT_DAYS = 366
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOARD_REFRESH_S = 60
# Rejections that are about who may post, not about the data.
_REFUSED = {"forbidden", "unknown_device", "site_mismatch", "channel_not_allowed"}


@bp.before_request
def refuse_nul() -> None:
    """Refuse NUL in the path or query: the database cannot compare text holding it."""
    values = [*request.args.values(), *(request.view_args or {}).values()]
    if any("\x00" in str(value) for value in values):
        raise Problem(400, "Bad Request", "parameters must not contain NUL (U+0000)")


def pipeline() -> Pipeline:
    """Return this app's results pipeline."""
    return state().results


def webhook_sender() -> BackgroundSender:
    """Return this app's webhook sender."""
    return state().webhooks


def commit(session: Session) -> None:
    """Commit; then send at once the webhooks this transaction enqueued."""
    session.commit()
    if session.info.pop(ENQUEUED_KEY, 0) and state().settings.webhooks_in_web:
        webhook_sender().kick()


def parse_day(text: str | None, zone: str) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """Return a day (YYYY-MM-DD, default today) and its bounds in the city's zone."""
    if not text:
        return local_day(state().clock(), zone)
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise Problem(400, "Bad Request", f"date {text!r} is not YYYY-MM-DD") from None
    return (day, *day_bounds(day, zone))


@bp.post("/api/v1/results")
@requires_role("lab")
def post_results() -> tuple[Response, int] | Response:
    """Store results (one object or a list): MQTT `result` plus site and device."""
    principal = current_principal()
    form = request.args.get("format", "v1")
    if form not in ("v1", "province"):
        raise Problem(400, "Bad Request", "format must be v1 or province")
    try:
        data: Any = json.loads(request.get_data(cache=False))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "Bad Request", f"the body must be JSON: {exc}") from None
    count = len(data) if isinstance(data, list) else 1
    if count > MAX_RESULTS:
        raise Problem(413, "Too Many Results", f"{count} results; at most {MAX_RESULTS} a request")
    session, now = db_session(), state().clock()
    scope = principal.site_id if principal.role == "lab" else None
    door = pipeline()
    if form == "province":
        zone, resolve = ZoneInfo(state().settings.timezone), door.catalogue(session).resolve
        if isinstance(data, list):
            data = [to_result(item, scope, zone, resolve) for item in data]
        else:
            data = to_result(data, scope, zone, resolve)
    try:
        parsed = validate_elements(SiteResultPayload, data, now, door.limits)
    except PayloadError as exc:
        raise Problem(422, "Invalid request body", str(exc)) from None
    outcomes = door.process_results(
        session, parsed, now, source="province" if form == "province" else "http", scope_site=scope
    )
    commit(session)
    counts = Counter(o.status for o in outcomes)
    body = {
        "stored": counts["stored"],
        "duplicate": counts["duplicate"],
        "rejected": counts["rejected"],
        "results": [o.as_dict() for o in outcomes],
    }
    if counts["rejected"] == len(outcomes):
        status = 403 if all(o.kind in _REFUSED for o in outcomes) else 422
        return problem_response(status, "Results refused", f"{len(outcomes)} refused", **body)
    return jsonify(body), 201 if counts["stored"] else 200


def _day_body(site_id: str, *, dump: bool = True) -> tuple[Site, dict[str, Any]]:
    """Return a market's day as its board shows it: results as JSON, or (dump=False) ResultOut."""
    session = read_session()  # a public read: no transaction round trips
    site = registry.get_site(session, site_id)
    day, start, end = parse_day(request.args.get("date"), state().settings.timezone)
    figures = day_figures(session, site.id, start, end)
    results = results_between(session, site.id, start, end)
    # the day's positive batches are among its results: no second query
    positives = [r for r in results if is_positive_batch(r)]

    def out(shown: list[ResultOut]) -> list[Any]:
        return [r.model_dump(mode="json") for r in shown] if dump else list(shown)

    return site, {
        "site": {"id": site.id, "name": site.name, "district": site.district},
        "date": day.isoformat(),
        "as_of": state().clock().isoformat(),
        "summary": figures.as_json(),
        "positives": out(positives),
        "results": out(results),
        "basis": board_basis(session, results, positives),
    }


@bp.get("/api/v1/sites/<site_id>/results")
def site_results(site_id: str) -> Response:
    """Return a market's results of a day (public, as on its board), with figures."""
    _, body = _day_body(site_id)
    return jsonify(body)


@bp.get("/m/<site_id>/board")
def board(site_id: str) -> str:
    """Render the market's public rapid-test board (快检公示) for a large screen."""
    # The page reads the results as they are: dumping every one of the day to JSON (and
    # parsing its times back) cost more than the rest of the board.
    site, body = _day_body(site_id, dump=False)
    zone = ZoneInfo(state().settings.timezone)

    def local(value: dt.datetime | str) -> dt.datetime:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        return when.astimezone(zone)

    return render_template(
        "board.html", site=site, body=body, refresh_s=BOARD_REFRESH_S, local=local
    )


@bp.get("/api/v1/results/export")
@requires_role("regulator", "lab")
def export() -> Response:
    """Export results of a period (from, to: YYYY-MM-DD, inclusive), a site or a district."""
    principal, session = current_principal(), db_session()
    form = request.args.get("format", "csv")
    if form not in ("csv", "xlsx"):
        raise Problem(400, "Bad Request", "format must be csv or xlsx")
    zone = state().settings.timezone
    first, start, _ = parse_day(request.args.get("from"), zone)
    last, _, end = parse_day(request.args.get("to") or request.args.get("from"), zone)
    if not 0 <= (last - first).days < MAX_EXPORT_DAYS:
        raise Problem(400, "Bad Request", f"from..to must span 1 to {MAX_EXPORT_DAYS} days")
    site_id, district = request.args.get("site"), request.args.get("district")
    if principal.role == "lab":
        site_id = site_id or principal.site_id
    if principal.role == "regulator":
        district = scoped_district(district)
    if site_id:
        site = registry.get_site(session, site_id)
        check_site(principal, site.id, site.district)
    name = f"rapid-tests-{site_id or district or 'all'}-{first:%Y%m%d}-{last:%Y%m%d}.{form}"
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}"}
    scope = {"site_id": site_id, "district": district}
    if form == "xlsx":
        rows = exports.export_rows(session, start, end, ZoneInfo(zone), **scope)
        return Response(exports.xlsx_bytes(rows), mimetype=XLSX, headers=headers)
    sessions = state().sessions

    def stream() -> Iterator[str]:
        # Its own session: the request's is closed at teardown, before streaming ends.
        with sessions() as own:
            yield from exports.csv_chunks(
                exports.export_rows(own, start, end, ZoneInfo(zone), **scope)
            )

    return Response(stream(), mimetype="text/csv; charset=utf-8", headers=headers)


def _quote(name: str) -> str:
    return quote(name, safe="")


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    outcome = bodies.POSTED
    spec.add(
        "post",
        "/api/v1/results",
        "Post rapid-test results (one or a list of up to 1,000); per-result outcomes",
        {"201": json_response(outcome, "Stored"), "200": json_response(outcome)},
        body={
            "oneOf": [
                spec.ref(SiteResultPayload),
                {"type": "array", "items": spec.ref(SiteResultPayload)},
            ]
        },
        params=[query_param("format", {"type": "string", "enum": ["v1", "province"]})],
    )
    day = json_response(
        bodies.obj(
            ("site", "date", "as_of", "summary", "positives", "results"),
            site=bodies.obj(("id", "name"), id=bodies.S, name=bodies.S, district=bodies.S),
            date={"type": "string", "format": "date"},
            as_of=bodies.S,
            summary=bodies.DAY_SUMMARY,
            positives=bodies.array(spec.ref(ResultOut)),
            results=bodies.array(spec.ref(ResultOut)),
        )
    )
    spec.add(
        "get",
        "/api/v1/sites/{site_id}/results",
        "A market's results of a day, with figures and the handling of positives",
        {"200": day},
        secured=False,
        params=[path_param("site_id"), query_param("date", {"type": "string", "format": "date"})],
    )
    html = {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}
    spec.add(
        "get",
        "/m/{site_id}/board",
        "Public rapid-test board (快检公示)",
        {"200": html},
        secured=False,
        params=[path_param("site_id")],
    )
    files = {
        "description": "CSV or XLSX",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}
            },
        },
    }
    spec.add(
        "get",
        "/api/v1/results/export",
        "Export results of a period, site or district (zh-CN headers)",
        {"200": files},
        params=[
            query_param("format", {"type": "string", "enum": ["csv", "xlsx"]}),
            query_param("from", {"type": "string", "format": "date"}),
            query_param("to", {"type": "string", "format": "date"}),
            query_param("site"),
            query_param("district"),
        ],
    )
