"""JSON API of market entry checks (入场查验) and the EPCIS export.

Market operators' staff use the site-scoped "lab" keys of their market (the market runs the
快检室 and the entry desk); admins may check entries anywhere. EPCIS is for regulators and
admins, and for issuers about their own subject's lots.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.devices import registry
from fangxin.devices.models import Site
from fangxin.service.api.certificates import register_errors
from fangxin.service.auth import check_site, current_principal, own_district, requires_role
from fangxin.service.context import db_session, state
from fangxin.service.openapi import Spec, json_response, path_param, query_param
from fangxin.service.problems import Problem, parse_body
from fangxin.trace.certificates import entries, entry_decisions, entry_proofs, epcis
from fangxin.trace.certificates.models import Certificate, EntryCheck, Subject
from fangxin.trace.certificates.records import format_quantity
from fangxin.trace.certificates.schemas import EntryIn, EntryOut, TestRef, VisualCheckIn
from fangxin.trace.certificates.views import public_base
from fangxin.trace.results.models import RapidTestResult, TestItem

bp = Blueprint("certificates_market", __name__, url_prefix="/api/v1")
register_errors(bp)  # with it the 422 for a bad proof photo, the same as issuers get


def _check_site(site_id: str) -> None:
    principal = current_principal()
    site = db_session().get(Site, site_id) if principal.role == "regulator" else None
    check_site(
        principal,
        site_id,
        site.district if site is not None else None,
        lab_refusal=Problem(
            403, "Forbidden", f"this key checks entries at {principal.site_id} only"
        ),
        district_refusal=Problem(403, "Forbidden", f"this key is scoped to {principal.district}"),
    )


def _item_names(session: Session, entry: EntryCheck) -> dict[str, str]:
    if entry.test_rule is None:  # only a test decision names an item
        return {}
    item = session.get(TestItem, entry.test_rule["item"])
    return {item.code: item.name_zh} if item else {}


def entry_out(entry: EntryCheck) -> EntryOut:
    """Return the API view of an entry check."""
    session = db_session()
    cert = session.get(Certificate, entry.certificate_id) if entry.certificate_id else None
    test = session.get(RapidTestResult, entry.test_result_id) if entry.test_result_id else None
    proofs = entry_proofs.proofs_of(session, entry.id)
    return EntryOut(
        id=entry.id,
        site=entry.site_id,
        status=entry.status,
        flags=list(entry.flags),
        certificate=cert.number if cert else None,
        certificate_status=cert.status if cert else None,
        product=entry.product,
        quantity=float(format_quantity(entry.quantity_milli)),
        unit=entry.unit,
        stall=entry.stall,
        checked_at=entry.checked_at,
        decided_at=entry.decided_at,
        test_result=TestRef(device=test.device_id, id=test.result_id) if test else None,
        category=entry.category,
        proofs=proofs,
        visual_checked_at=entry.visual_checked_at,
        visual_note=entry.visual_note,
        rules=entry_decisions.applied_rules(entry, proofs, _item_names(session, entry)),
    )


@bp.post("/sites/<site_id>/entries")
@requires_role("lab")
def check_entry(site_id: str) -> tuple[Response, int]:
    """Check a lot in: admitted on a matching certificate, else it waits for a rapid test."""
    _check_site(site_id)
    session = db_session()
    site = registry.get_site(session, site_id)
    data = parse_body(EntryIn)
    entry = entries.check_entry(session, site, data, state().clock(), current_principal().key_id)
    session.commit()
    response = jsonify(entry_out(entry).model_dump(mode="json"))
    response.headers["Location"] = f"/api/v1/sites/{site_id}/entries/{entry.id}"
    return response, 201


def _entry(site_id: str, entry_id: int) -> EntryCheck:
    _check_site(site_id)
    entry = db_session().get(EntryCheck, entry_id)
    if entry is None or entry.site_id != site_id:
        raise Problem(404, "Not Found", f"no entry {entry_id} at {site_id}")
    return entry


@bp.get("/sites/<site_id>/entries/<int:entry_id>")
@requires_role("lab", "regulator")
def get_entry(site_id: str, entry_id: int) -> Response:
    """Read an entry check (poll it while it waits for a test)."""
    return jsonify(entry_out(_entry(site_id, entry_id)).model_dump(mode="json"))


@bp.post("/sites/<site_id>/entries/<int:entry_id>/visual-check")
@requires_role("lab")
def visual_check(site_id: str, entry_id: int) -> Response:
    """Record the visual check of an external certificate or proof: admit, test or refuse."""
    entry = _entry(site_id, entry_id)
    data = parse_body(VisualCheckIn)
    session = db_session()
    entry_decisions.visual_check(session, entry, data, state().clock(), current_principal().key_id)
    session.commit()
    return jsonify(entry_out(entry).model_dump(mode="json"))


@bp.get("/sites/<site_id>/entries/<int:entry_id>/proofs/<int:proof_id>/photo")
@requires_role("lab", "regulator")
def proof_photo(site_id: str, entry_id: int, proof_id: int) -> Response:
    """Return the photo of a proof recorded at an entry check."""
    _entry(site_id, entry_id)
    proof = entry_proofs.photo_of(db_session(), entry_id, proof_id)
    if proof is None:
        raise Problem(404, "Not Found", f"no proof {proof_id} on entry {entry_id}")
    response = Response(proof.photo, mimetype=proof.photo_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _time(name: str) -> dt.datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise Problem(400, "Bad Request", f"{name} must be an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise Problem(400, "Bad Request", f"{name} needs a UTC offset")
    return value


@bp.get("/epcis/events")
@requires_role("regulator", "issuer")
def epcis_events() -> Response:
    """EPCIS 2.0 JSON-LD document of traceability events (filters: certificate, from, to)."""
    principal = current_principal()
    subject = principal.subject_id if principal.role == "issuer" else request.args.get("subject")
    settings = state().settings
    start, end = _time("from"), _time("to")
    scoped: list[str | None] = [subject]
    district = own_district(principal) if principal.role == "regulator" else None
    if district:  # a district regulator: its district's subjects only
        own = db_session().scalars(select(Subject.id).where(Subject.district == district))
        scoped = [s for s in own if subject in (None, s)]
    found = [
        event
        for one in scoped
        for event in epcis.events(
            db_session(),
            public_base(settings),
            settings.timezone,
            certificate=request.args.get("certificate"),
            subject=one,
        )
    ]
    found = [
        e
        for e in found
        if (start is None or dt.datetime.fromisoformat(e["eventTime"]) >= start)
        and (end is None or dt.datetime.fromisoformat(e["eventTime"]) < end)
    ]
    body = epcis.document(found, public_base(settings), state().clock())
    return Response(
        json.dumps(body, ensure_ascii=False),
        mimetype="application/ld+json",
        headers={"GS1-EPCIS-Version": "2.0.0"},
    )


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    site = [path_param("site_id")]
    spec.add(
        "post",
        "/api/v1/sites/{site_id}/entries",
        "Entry check of a lot (入场查验)",
        {"201": json_response(spec.ref(EntryOut), "Created")},
        body=EntryIn,
        params=site,
    )
    spec.add(
        "get",
        "/api/v1/sites/{site_id}/entries/{entry_id}",
        "Read an entry check",
        {"200": json_response(spec.ref(EntryOut))},
        params=[*site, path_param("entry_id")],
    )
    entry = [*site, path_param("entry_id")]
    spec.add(
        "post",
        "/api/v1/sites/{site_id}/entries/{entry_id}/visual-check",
        "Visual check of an external certificate or proof (admit, test, refuse)",
        {"200": json_response(spec.ref(EntryOut))},
        body=VisualCheckIn,
        params=entry,
    )
    spec.add(
        "get",
        "/api/v1/sites/{site_id}/entries/{entry_id}/proofs/{proof_id}/photo",
        "Photo of a proof recorded at an entry check",
        {
            "200": {
                "description": "photo",
                "content": {"image/jpeg": {}, "image/png": {}},
            }
        },
        params=[*entry, path_param("proof_id")],
    )
    spec.add(
        "get",
        "/api/v1/epcis/events",
        "EPCIS 2.0 JSON-LD document of traceability events",
        {"200": {"description": "EPCIS document", "content": {"application/ld+json": {}}}},
        params=[
            query_param("certificate"),
            query_param("subject"),
            query_param("from", {"type": "string", "format": "date-time"}),
            query_param("to", {"type": "string", "format": "date-time"}),
        ],
    )
