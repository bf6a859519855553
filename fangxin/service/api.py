"""JSON API under /api/v1: registry and site status."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel

from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn, SiteOut
from fangxin.service.app import db_session, state
from fangxin.service.auth import requires_role
from fangxin.service.problems import Problem, problem_response
from fangxin.trace.results import count_by_verdict, last_result_time

bp = Blueprint("api", __name__, url_prefix="/api/v1")


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M]) -> M:
    """Validate the JSON body against a model (errors become 422 problem+json)."""
    data = request.get_json(silent=True)
    if data is None:
        raise Problem(400, "Bad Request", "the body must be a JSON document")
    return model.model_validate(data)


def _created(payload: BaseModel) -> tuple[Response, int]:
    return jsonify(payload.model_dump(mode="json")), 201


@bp.errorhandler(registry.RegistryError)
def _conflict(exc: registry.RegistryError) -> Response:
    return problem_response(409, "Conflict", str(exc))


@bp.errorhandler(registry.NotFound)
def _not_found(exc: registry.NotFound) -> Response:
    return problem_response(404, "Not Found", str(exc))


@bp.post("/sites")
@requires_role("admin")
def add_site() -> tuple[Response, int]:
    """Register a site."""
    session = db_session()
    site = registry.add_site(session, parse_body(SiteIn))
    session.commit()
    return _created(SiteOut.model_validate(site))


@bp.get("/sites")
@requires_role("regulator")
def list_sites() -> Response:
    """List sites, optionally of a district."""
    sites = registry.list_sites(db_session(), request.args.get("district"))
    return jsonify([SiteOut.model_validate(s).model_dump(mode="json") for s in sites])


@bp.post("/devices")
@requires_role("admin")
def add_device() -> tuple[Response, int]:
    """Register a device; the answer carries its MQTT password, shown this once."""
    session = db_session()
    created = registry.add_device(session, parse_body(DeviceIn), utcnow())
    session.commit()
    return _created(created)


@bp.get("/devices")
@requires_role("regulator")
def list_devices() -> Response:
    """List devices with their liveness, optionally of a site."""
    now = utcnow()
    devices = registry.list_devices(db_session(), request.args.get("site"))
    return jsonify([registry.device_out(d, now).model_dump(mode="json") for d in devices])


def local_day(now: dt.datetime, tz: str) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """Return today's date in the city's time zone and its bounds as aware datetimes."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    start = dt.datetime.combine(today, dt.time(), zone)
    return today, start, start + dt.timedelta(days=1)


@bp.get("/sites/<site_id>/status")
def site_status(site_id: str) -> Response:
    """Smart-market status: today's results by verdict, devices known and online."""
    session = db_session()
    site = registry.get_site(session, site_id)
    now = utcnow()
    today, start, end = local_day(now, state().settings.timezone)
    counts = count_by_verdict(session, site_id, start, end)
    devices = registry.list_devices(session, site_id)
    online = sum(1 for d in devices if d.active and registry.is_online(d, now))
    last = last_result_time(session, site_id)
    body: dict[str, Any] = {
        "site": SiteOut.model_validate(site).model_dump(mode="json"),
        "date": today.isoformat(),
        "results_today": {**counts, "total": sum(counts.values())},
        "last_result_at": last.isoformat() if last else None,
        "devices": {"known": len(devices), "online": online},
        "as_of": now.isoformat(),
    }
    return jsonify(body)
