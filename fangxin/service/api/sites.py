"""JSON API under /api/v1: registry and site status."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel

from fangxin.devices import registry
from fangxin.devices.schemas import DeviceCreated, DeviceIn, DeviceOut, SiteIn, SiteOut
from fangxin.service import bodies
from fangxin.service.auth import current_principal, own_district, requires_role, scoped_district
from fangxin.service.context import db_session, read_session, state
from fangxin.service.openapi import Spec, json_response, path_param, query_param
from fangxin.service.paging import PAGE_PARAMS, listing, page_args, page_of, paged
from fangxin.service.problems import parse_body, problem_response
from fangxin.trace.site_status import site_status as compute_status

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _created(payload: BaseModel) -> tuple[Response, int]:
    return jsonify(payload.model_dump(mode="json")), 201


@bp.errorhandler(registry.RegistryError)
def _conflict(exc: registry.RegistryError) -> Response:
    return problem_response(409, "Conflict", str(exc))


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
    """List sites, optionally of a district (a district key: its own), paged."""
    page = page_args()
    sites = registry.list_sites(db_session(), scoped_district(request.args.get("district")))
    return paged(
        [SiteOut.model_validate(s).model_dump(mode="json") for s in page_of(sites, page)], page
    )


@bp.post("/devices")
@requires_role("admin")
def add_device() -> tuple[Response, int]:
    """Register a device; the answer carries its MQTT password, shown this once."""
    session = db_session()
    created = registry.add_device(session, parse_body(DeviceIn), state().clock())
    session.commit()
    return _created(created)


@bp.get("/devices")
@requires_role("regulator")
def list_devices() -> Response:
    """List devices with their liveness, optionally of a site, paged."""
    now, page = state().clock(), page_args()
    devices = registry.list_devices(db_session(), request.args.get("site"))
    district = own_district(current_principal())
    if district:  # a district office sees its own district's devices only
        own = {s.id for s in registry.list_sites(db_session(), district)}
        devices = [d for d in devices if d.site_id in own]
    shown = page_of(devices, page)
    return paged([registry.device_out(d, now).model_dump(mode="json") for d in shown], page)


@bp.get("/sites/<site_id>/status")
def site_status(site_id: str) -> Response:
    """Smart-market status: today's results by verdict, devices known and online, and more."""
    session = read_session()  # a public read: no transaction round trips
    site = registry.get_site(session, site_id)
    body = compute_status(session, site, state().clock(), state().settings.timezone)
    return jsonify({"site": SiteOut.model_validate(site).model_dump(mode="json"), **body})


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    spec.add(
        "post",
        "/api/v1/sites",
        "Register a site",
        {"201": json_response(spec.ref(SiteOut), "Created")},
        body=SiteIn,
    )
    spec.add(
        "get",
        "/api/v1/sites",
        "List sites",
        {"200": listing(spec.ref(SiteOut))},
        params=[query_param("district"), *PAGE_PARAMS],
    )
    spec.add(
        "post",
        "/api/v1/devices",
        "Register a device (its MQTT password is shown once)",
        {"201": json_response(spec.ref(DeviceCreated), "Created")},
        body=DeviceIn,
    )
    spec.add(
        "get",
        "/api/v1/devices",
        "List devices with their liveness",
        {"200": listing(spec.ref(DeviceOut))},
        params=[query_param("site"), *PAGE_PARAMS],
    )
    status_schema = {**bodies.SITE_STATUS}
    status_schema["properties"] = {**status_schema["properties"], "site": spec.ref(SiteOut)}
    spec.add(
        "get",
        "/api/v1/sites/{site_id}/status",
        "Smart-market status of a site",
        {"200": json_response(status_schema)},
        secured=False,
        params=[path_param("site_id")],
    )
