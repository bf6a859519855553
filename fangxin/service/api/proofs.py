"""Other quality proofs (其他质量安全合格证明): record one with its photo, read it back.

A purchaser's issuer records the proofs it collected for lots bought without a 合格证 and cites
them on its certificates ("no certificate, no purchase"). The photo is checked by its first
bytes (JPEG or PNG) and size before anything is stored.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from fangxin.devices.models import Site
from fangxin.service import bodies
from fangxin.service.api.certificates import check_subject, register_errors
from fangxin.service.auth import check_site, current_principal, requires_role
from fangxin.service.context import db_session, state
from fangxin.service.openapi import Spec, json_response, path_param
from fangxin.service.problems import Problem, parse_body
from fangxin.trace.certificates import subjects
from fangxin.trace.certificates.proofs import (
    NO_PROOF_NO_PURCHASE,
    PHOTO_MAGIC,
    PHOTO_MAX_BYTES,
    PROOF_TYPES,
    ProofIn,
    ProofOut,
    QualityProof,
    proof_view,
    record_proof,
)

bp = Blueprint("certificates_proofs", __name__, url_prefix="/api/v1")
register_errors(bp)


def _body() -> tuple[ProofIn, bytes | None]:
    """Read the proof from a multipart form (with its photo) or a JSON body (without)."""
    if request.mimetype != "multipart/form-data":
        return parse_body(ProofIn), None
    upload = request.files.get("photo")
    fields = {k: v for k, v in request.form.items() if v != ""}
    data = ProofIn.model_validate(fields)  # a ValidationError answers 422 problem+json
    return data, upload.read(PHOTO_MAX_BYTES + 1) if upload is not None else None


def _readable(proof_id: int) -> QualityProof:
    session = db_session()
    proof = session.get(QualityProof, proof_id)
    if proof is None:
        raise Problem(404, "Not Found", f"no proof {proof_id}")
    principal = current_principal()
    if proof.subject_id is not None:
        check_subject(principal, subjects.get_subject(session, proof.subject_id), write=False)
    elif proof.site_id is not None:
        site = session.get(Site, proof.site_id)
        check_site(principal, proof.site_id, site.district if site else None)
    return proof


@bp.get("/proof-types")
@requires_role("regulator", "issuer", "lab")
def proof_types() -> Response:
    """List the proof types, the rule asking for them (with its source) and the photo limits."""
    return jsonify(
        types=[{"code": code, "label": label} for code, label in PROOF_TYPES.items()],
        rule=NO_PROOF_NO_PURCHASE,
        photo_max_bytes=PHOTO_MAX_BYTES,
        photo_max_bytes_source="本地设置",
        photo_types=sorted(set(PHOTO_MAGIC.values())),
    )


@bp.post("/subjects/<subject_id>/proofs")
@requires_role("issuer")
def add_proof(subject_id: str) -> tuple[Response, int]:
    """Record a proof the subject collected (multipart with a `photo` file, or JSON)."""
    session = db_session()
    subject = subjects.get_subject(session, subject_id)
    principal = current_principal()
    check_subject(principal, subject, write=True)
    data, photo = _body()
    proof = record_proof(
        session, data, photo, state().clock(), subject_id=subject.id, key_id=principal.key_id
    )
    session.commit()
    response = jsonify(proof_view(proof).model_dump(mode="json"))
    response.headers["Location"] = f"/api/v1/proofs/{proof.id}"
    return response, 201


@bp.get("/proofs/<int:proof_id>")
@requires_role("regulator", "issuer", "lab")
def get_proof(proof_id: int) -> Response:
    """Read a proof."""
    return jsonify(proof_view(_readable(proof_id)).model_dump(mode="json"))


@bp.get("/proofs/<int:proof_id>/photo")
@requires_role("regulator", "issuer", "lab")
def get_photo(proof_id: int) -> Response:
    """Return the proof's photo as uploaded."""
    proof = _readable(proof_id)
    if proof.photo is None or proof.photo_type is None:
        raise Problem(404, "Not Found", f"proof {proof_id} has no photo")
    response = Response(proof.photo, mimetype=proof.photo_type)
    response.headers["Content-Disposition"] = f'inline; filename="proof-{proof.id}"'
    return response


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    out = json_response(spec.ref(ProofOut))
    pid = [path_param("proof_id")]
    kind = bodies.obj(("code", "label"), code=bodies.S, label=bodies.S)
    types = bodies.obj(
        ("types", "rule", "photo_max_bytes", "photo_max_bytes_source", "photo_types"),
        types=bodies.array(kind),
        rule=bodies.S,
        photo_max_bytes=bodies.INT,
        photo_max_bytes_source=bodies.S,
        photo_types=bodies.array(bodies.S),
    )
    spec.add(
        "get", "/api/v1/proof-types", "Proof types and the rule", {"200": json_response(types)}
    )
    spec.add(
        "post",
        "/api/v1/subjects/{subject_id}/proofs",
        "Record a quality proof (multipart with a photo, or JSON)",
        {"201": json_response(spec.ref(ProofOut), "Created")},
        body=ProofIn,
        params=[path_param("subject_id")],
    )
    spec.add("get", "/api/v1/proofs/{proof_id}", "Read a proof", {"200": out}, params=pid)
    photo = {"description": "The photo", "content": {"image/jpeg": {}, "image/png": {}}}
    spec.add(
        "get", "/api/v1/proofs/{proof_id}/photo", "A proof's photo", {"200": photo}, params=pid
    )
