"""Who may cite what on a 合格证: a subject's own and commissioned sites, lots handed on.

Regulators of the subject's district (and admins) link sites to a subject; the subject's issuer
reads them. A certificate's issuer names the purchasers its lot went to.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from fangxin.service.api.certificates import certificate_in_scope, check_subject, register_errors
from fangxin.service.auth import current_principal, requires_role
from fangxin.service.context import db_session, state
from fangxin.service.openapi import Spec, json_response, path_param
from fangxin.service.paging import PAGE_PARAMS, listing, page_args, paged
from fangxin.service.problems import parse_body, problem_response
from fangxin.trace.certificates import custody, subjects
from fangxin.trace.certificates.models import Certificate, CertificateTransfer, SubjectSite
from fangxin.trace.certificates.schemas import (
    SiteLinkIn,
    SiteLinkOut,
    TransferIn,
    TransferOut,
)

bp = Blueprint("certificates_custody", __name__, url_prefix="/api/v1")
register_errors(bp)


@bp.errorhandler(custody.CustodyError)
def _refused(exc: custody.CustodyError) -> Response:
    return problem_response(422, "Cannot record", str(exc))


def _link_out(row: SubjectSite) -> dict[str, object]:
    out = SiteLinkOut(
        subject=row.subject_id, site=row.site_id, relation=row.relation, created_at=row.created_at
    )
    return out.model_dump(mode="json")


def _transfer_out(cert: Certificate, row: CertificateTransfer) -> dict[str, object]:
    out = TransferOut(
        certificate=cert.number, purchaser=row.purchaser_id, created_at=row.created_at
    )
    return out.model_dump(mode="json")


@bp.post("/subjects/<subject_id>/sites")
@requires_role("regulator")
def link_site(subject_id: str) -> tuple[Response, int]:
    """Link a site to a subject: its own, or a lab it commissioned (委托检测)."""
    data = parse_body(SiteLinkIn)
    session = db_session()
    subject = subjects.get_subject(session, subject_id)
    principal = current_principal()
    check_subject(principal, subject, write=True)
    row = custody.link_site(session, subject, data.site, data.relation, principal.key_id)
    session.commit()
    return jsonify(_link_out(row)), 201


@bp.get("/subjects/<subject_id>/sites")
@requires_role("regulator", "issuer")
def list_sites(subject_id: str) -> Response:
    """List the sites whose tests may be the subject's evidence."""
    session = db_session()
    subject = subjects.get_subject(session, subject_id)
    check_subject(current_principal(), subject, write=False)
    page = page_args()
    rows = custody.linked_sites(session, subject.id, page.offset, page.fetch)
    return paged([_link_out(row) for row in rows], page)


@bp.delete("/subjects/<subject_id>/sites/<site_id>")
@requires_role("regulator")
def unlink_site(subject_id: str, site_id: str) -> Response:
    """End a site link; certificates already issued keep their evidence."""
    session = db_session()
    subject = subjects.get_subject(session, subject_id)
    check_subject(current_principal(), subject, write=True)
    custody.unlink_site(session, subject, site_id)
    session.commit()
    return jsonify(subject=subject.id, site=site_id, linked=False)


@bp.post("/certificates/<number>/transfers")
@requires_role("issuer")
def transfer(number: str) -> tuple[Response, int]:
    """Name the purchaser a lot went to; it may then re-issue from this certificate."""
    data = parse_body(TransferIn)
    cert = certificate_in_scope(number, write=True)
    session = db_session()
    purchaser = subjects.get_subject(session, data.purchaser)
    row = custody.transfer(session, cert, purchaser, state().clock(), current_principal().key_id)
    session.commit()
    return jsonify(_transfer_out(cert, row)), 201


@bp.get("/certificates/<number>/transfers")
@requires_role("regulator", "issuer")
def transfers(number: str) -> Response:
    """List the purchasers a certificate's lot was handed to."""
    cert = certificate_in_scope(number)
    page = page_args()
    rows = custody.transfers_of(db_session(), cert, page.offset, page.fetch)
    return paged([_transfer_out(cert, row) for row in rows], page)


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    sid = [path_param("subject_id")]
    link = spec.ref(SiteLinkOut)
    moved = spec.ref(TransferOut)
    num = [path_param("number")]
    spec.add(
        "post",
        "/api/v1/subjects/{subject_id}/sites",
        "Link an own or commissioned site to a subject",
        {"201": json_response(link, "Created")},
        body=SiteLinkIn,
        params=sid,
    )
    spec.add(
        "get",
        "/api/v1/subjects/{subject_id}/sites",
        "A subject's own and commissioned sites",
        {"200": listing(link)},
        params=[*sid, *PAGE_PARAMS],
    )
    unlinked = {
        "type": "object",
        "required": ["subject", "site", "linked"],
        "properties": {
            "subject": {"type": "string"},
            "site": {"type": "string"},
            "linked": {"const": False},
        },
    }
    spec.add(
        "delete",
        "/api/v1/subjects/{subject_id}/sites/{site_id}",
        "End a site link",
        {"200": json_response(unlinked)},
        params=[*sid, path_param("site_id")],
    )
    spec.add(
        "post",
        "/api/v1/certificates/{number}/transfers",
        "Name the purchaser a lot went to",
        {"201": json_response(moved, "Created")},
        body=TransferIn,
        params=num,
    )
    spec.add(
        "get",
        "/api/v1/certificates/{number}/transfers",
        "Purchasers a lot was handed to",
        {"200": listing(moved)},
        params=[*num, *PAGE_PARAMS],
    )
