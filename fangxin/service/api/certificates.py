"""JSON API of 合格证: subjects, issuing, reading, labels, voiding and recalls.

Who may do what: admins and regulators register subjects (a district-scoped regulator only in
its district) and hand out issuer keys; an issuer key, scoped to one subject, issues, prints and
voids that subject's certificates; regulators recall; labs (market staff) read certificates.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from fangxin.config import ConfigError
from fangxin.service import audit, bodies
from fangxin.service.auth import (
    Principal,
    check_district,
    create_key,
    current_principal,
    in_scope,
    requires_role,
    scoped_district,
)
from fangxin.service.context import db_session, state
from fangxin.service.openapi import Spec, json_response, path_param, query_param
from fangxin.service.pages.scan import clear_pages
from fangxin.service.paging import PAGE_PARAMS, listing, page_args, paged
from fangxin.service.problems import Problem, parse_body, problem_response
from fangxin.trace.certificates import qr, recalls, records, subjects
from fangxin.trace.certificates.models import Certificate, Recall, Subject
from fangxin.trace.certificates.proofs import ProofError
from fangxin.trace.certificates.schemas import (
    CertificateIn,
    CertificateOut,
    ReasonIn,
    RecallOut,
    SubjectIn,
    SubjectOut,
)
from fangxin.trace.certificates.views import certificate_view, fresh_view, links_nothing

bp = Blueprint("certificates", __name__, url_prefix="/api/v1")


def register_errors(blueprint: Blueprint) -> None:
    """Answer the traceability domain's errors as problem+json on this blueprint."""

    @blueprint.errorhandler(records.CertificateError)
    def _invalid(exc: records.CertificateError) -> Response:
        errors = [{"field": exc.field, "message": str(exc)}]
        return problem_response(422, "Invalid certificate", str(exc), errors=errors)

    @blueprint.errorhandler(records.CertificateRefused)
    def _refused(exc: records.CertificateRefused) -> Response:
        errors = [{"field": exc.field, "message": str(exc)}]
        return problem_response(403, "Not yours to cite", str(exc), errors=errors)

    @blueprint.errorhandler(ProofError)
    def _bad_proof(exc: ProofError) -> Response:
        errors = [{"field": exc.field, "message": str(exc)}]
        return problem_response(422, "Invalid proof", str(exc), errors=errors)

    @blueprint.errorhandler(ConfigError)
    def _unavailable(exc: ConfigError) -> Response:
        return problem_response(503, "Signing unavailable", str(exc))

    @blueprint.errorhandler(qr.QRError)
    def _bad_print(exc: qr.QRError) -> Response:
        return problem_response(422, "Cannot print", str(exc))

    for lookup in (records.CertificateNotFound, subjects.SubjectNotFound):

        @blueprint.errorhandler(lookup)
        def _missing(exc: LookupError) -> Response:
            return problem_response(404, "Not Found", str(exc))

    for clash in (records.CertificateConflict, subjects.SubjectError, recalls.RecallConflict):

        @blueprint.errorhandler(clash)
        def _conflict(exc: ValueError) -> Response:
            return problem_response(409, "Conflict", str(exc))


register_errors(bp)


def check_subject(principal: Principal, subject: Subject, write: bool) -> None:
    """Refuse callers outside the subject's scope (issuers: own subject; regulators: district)."""
    if principal.role == "admin":
        return
    if principal.role == "issuer" and principal.subject_id == subject.id:
        return
    if principal.role == "regulator" and in_scope(principal.district, subject.district):
        return
    if principal.role == "lab" and not write:
        return
    raise Problem(403, "Forbidden", f"this key may not act for subject {subject.id}")


def certificate_in_scope(number: str, write: bool = False) -> Certificate:
    """Return a certificate the caller may read (or write)."""
    session = db_session()
    cert = records.get(session, number)
    check_subject(current_principal(), subjects.get_subject(session, cert.subject_id), write)
    return cert


def _view(cert: Certificate) -> Response:
    return jsonify(certificate_view(db_session(), cert, state().settings).model_dump(mode="json"))


@bp.post("/subjects")
@requires_role("regulator")
def add_subject() -> tuple[Response, int]:
    """Register a producer or purchaser."""
    data = parse_body(SubjectIn)
    principal = current_principal()
    refusal = Problem(403, "Forbidden", f"this key registers subjects of {principal.district}")
    check_district(principal, data.district, refusal)
    session = db_session()
    subject = subjects.add_subject(session, data)
    session.commit()
    return jsonify(SubjectOut.model_validate(subject).model_dump(mode="json")), 201


@bp.get("/subjects")
@requires_role("regulator", "issuer")
def list_subjects() -> Response:
    """List subjects (search `q` in name or credit code) in the caller's scope, paged."""
    principal = current_principal()
    page = page_args()
    found = subjects.list_subjects(
        db_session(),
        search=(request.args.get("q") or "").strip() or None,
        district=scoped_district(request.args.get("district")),
        subject_id=principal.subject_id if principal.role == "issuer" else None,
        offset=page.offset,
        limit=page.fetch,
    )
    return paged([SubjectOut.model_validate(s).model_dump(mode="json") for s in found], page)


@bp.get("/subjects/<subject_id>")
@requires_role("regulator", "issuer")
def get_subject(subject_id: str) -> Response:
    """Read a subject."""
    subject = subjects.get_subject(db_session(), subject_id)
    check_subject(current_principal(), subject, write=False)
    return jsonify(SubjectOut.model_validate(subject).model_dump(mode="json"))


@bp.post("/subjects/<subject_id>/keys")
@requires_role("regulator")
def add_issuer_key(subject_id: str) -> tuple[Response, int]:
    """Create an issuer API key scoped to the subject; it is shown this once."""
    session = db_session()
    subject = subjects.get_subject(session, subject_id)
    check_subject(current_principal(), subject, write=True)
    key = create_key(session, "issuer", subject_id=subject.id, name=f"issuer {subject.id}")
    session.commit()
    return jsonify({"subject": subject.id, "role": "issuer", "key": key}), 201


@bp.post("/certificates")
@requires_role("issuer")
def issue_certificate() -> tuple[Response, int]:
    """Issue a certificate: validated, numbered, signed."""
    data = parse_body(CertificateIn)
    principal = current_principal()
    session = db_session()
    subject = subjects.get_subject(session, data.subject)
    check_subject(principal, subject, write=True)
    if principal.role != "admin" and (data.template_version != "2026" or data.issued_at):
        raise Problem(403, "Forbidden", "only admins import older certificates")
    audited = audit.shared_entry(201)
    cert = state().issuer.issue(
        session, data, subject, state().clock(), also=lambda c: [audited({"number": c.number})]
    )
    audit.committed()
    if links_nothing(data):
        # Most lots cite nothing: their view needs no lineage, test or proof queries.
        view = fresh_view(session, cert, state().settings, subject, state().signer)
        response = jsonify(view.model_dump(mode="json"))
    else:
        response = _view(cert)
    response.headers["Location"] = f"/api/v1/certificates/{cert.number}"
    return response, 201


@bp.get("/certificates/<number>")
@requires_role("regulator", "issuer", "lab")
def get_certificate(number: str) -> Response:
    """Read a certificate with its links, tests and signature check."""
    return _view(certificate_in_scope(number))


@bp.post("/certificates/<number>/revoke")
@requires_role("issuer")
def revoke_certificate(number: str) -> Response:
    """Void a certificate with a reason; it stays viewable and says so."""
    cert = certificate_in_scope(number, write=True)
    records.revoke(db_session(), cert, parse_body(ReasonIn).reason, state().clock())
    db_session().commit()
    _pages_changed()
    return _view(cert)


def _pages_changed() -> None:
    clear_pages()


def _recall_of(cert: Certificate) -> Recall:
    row = db_session().scalar(select(Recall).where(Recall.certificate_id == cert.id))
    if row is None:
        raise Problem(404, "Not Found", f"{cert.number} is not recalled")
    return row


@bp.post("/certificates/<number>/recall")
@requires_role("regulator")
def recall_certificate(number: str) -> tuple[Response, int]:
    """Recall a lot: its page warns, lots downstream are flagged, markets are listed."""
    cert = certificate_in_scope(number, write=False)
    session = db_session()
    row = recalls.recall(session, cert, parse_body(ReasonIn).reason, state().clock(), None)
    session.commit()
    _pages_changed()
    return jsonify(recalls.recall_view(session, cert, row).model_dump(mode="json")), 201


@bp.get("/certificates/<number>/recall")
@requires_role("regulator")
def get_recall(number: str) -> Response:
    """Show a recall with the lots downstream and the markets that admitted any of them."""
    cert = certificate_in_scope(number)
    view = recalls.recall_view(db_session(), cert, _recall_of(cert))
    return jsonify(view.model_dump(mode="json"))


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    cert = json_response(spec.ref(CertificateOut))
    num = [path_param("number")]
    spec.add(
        "post",
        "/api/v1/subjects",
        "Register a subject (承诺主体)",
        {"201": json_response(spec.ref(SubjectOut), "Created")},
        body=SubjectIn,
    )
    spec.add(
        "get",
        "/api/v1/subjects",
        "List subjects (search by name or credit code)",
        {"200": listing(spec.ref(SubjectOut))},
        params=[query_param("q"), query_param("district"), *PAGE_PARAMS],
    )
    spec.add(
        "get",
        "/api/v1/subjects/{subject_id}",
        "Read a subject",
        {"200": json_response(spec.ref(SubjectOut))},
        params=[path_param("subject_id")],
    )
    spec.add(
        "post",
        "/api/v1/subjects/{subject_id}/keys",
        "Create an issuer key (shown once)",
        {"201": json_response(bodies.ISSUER_KEY, "Created")},
        params=[path_param("subject_id")],
    )
    spec.add("post", "/api/v1/certificates", "Issue a 合格证", {"201": cert}, body=CertificateIn)
    spec.add("get", "/api/v1/certificates/{number}", "Read a 合格证", {"200": cert}, params=num)
    spec.add(
        "post",
        "/api/v1/certificates/{number}/revoke",
        "Void a 合格证",
        {"200": cert},
        body=ReasonIn,
        params=num,
    )
    recall = json_response(spec.ref(RecallOut))
    spec.add(
        "post",
        "/api/v1/certificates/{number}/recall",
        "Recall a lot",
        {"201": recall},
        body=ReasonIn,
        params=num,
    )
    spec.add(
        "get", "/api/v1/certificates/{number}/recall", "Read a recall", {"200": recall}, params=num
    )
