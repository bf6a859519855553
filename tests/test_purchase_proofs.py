"""Issue 13 item 13: no certificate, no purchase. A purchaser's certificate cites an upstream
certificate or a recorded other proof (type, number, photo)."""

from __future__ import annotations

import io
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.models import Certificate
from fangxin.trace.certificates.proofs import PHOTO_MAX_BYTES, CertificateProof, QualityProof
from tests.trace_helpers import CERT, PURCHASER, auth, issuer, subject

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
BOUGHT = {**CERT, "subject": "p-001", "product": "猪肉"}


def _buyer(client: FlaskClient, admin_key: str, subject_id: str = "p-001") -> str:
    subject(client, admin_key, **{**PURCHASER, "id": subject_id})
    return issuer(client, admin_key, subject_id)


def _upload(client: FlaskClient, key_: str, photo: bytes | None, **fields: str) -> Any:
    form: dict[str, Any] = {"kind": "animal_quarantine", "number": "4100123456", **fields}
    if photo is not None:
        form["photo"] = (io.BytesIO(photo), "proof.png", "image/png")
    return client.post(
        "/api/v1/subjects/p-001/proofs",
        data=form,
        content_type="multipart/form-data",
        headers=auth(key_),
    )


def _count(sessions: sessionmaker[Session], model: type[Certificate | QualityProof]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_purchaser_without_certificate_or_proof_may_not_issue(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    buyer = _buyer(client, admin_key)
    refused = client.post("/api/v1/certificates", json=BOUGHT, headers=auth(buyer))
    assert refused.status_code == 422
    detail = refused.get_json()["detail"]
    assert "无证不收" in detail
    assert "农业农村部令2025年第4号" in detail  # the rule shows its source
    assert _count(sessions, Certificate) == 0
    # An imported record of an older template is kept as it was issued (admins only).
    older = {**BOUGHT, "template_version": "2023", "issued_at": "2024-05-04T09:30:00+08:00"}
    older |= {"basis": ["质量安全内部控制合格"], "commitment": "我承诺对销售的食用农产品负责。"}
    assert (
        client.post("/api/v1/certificates", json=older, headers=auth(admin_key)).status_code == 201
    )


def test_a_recorded_proof_with_its_photo_lets_a_purchaser_issue(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    buyer = _buyer(client, admin_key)
    made = _upload(client, buyer, PNG, issued_by="郏县动物卫生监督所")
    assert made.status_code == 201, made.get_json()
    proof = made.get_json()
    assert (proof["kind_label"], proof["photo_type"], proof["photo"]) == (
        "动物检疫合格证明",
        "image/png",
        True,
    )
    photo = client.get(f"/api/v1/proofs/{proof['id']}/photo", headers=auth(buyer))
    assert (photo.status_code, photo.mimetype, photo.data) == (200, "image/png", PNG)
    json_only = client.post(
        "/api/v1/subjects/p-001/proofs",
        json={"kind": "meat_quality", "number": "RP-77"},
        headers=auth(buyer),
    )
    assert json_only.status_code == 201
    cert = client.post(
        "/api/v1/certificates",
        json={**BOUGHT, "proofs": [proof["id"], json_only.get_json()["id"]]},
        headers=auth(buyer),
    )
    assert cert.status_code == 201, cert.get_json()
    assert cert.get_json()["signature"]["verified"] is True
    assert [p["number"] for p in cert.get_json()["signed"]["proofs"]] == ["4100123456", "RP-77"]
    signed_keys = [set(p) for p in cert.get_json()["signed"]["proofs"]]
    assert signed_keys == [{"kind", "number", "photo_sha256"}] * 2
    shown = [(p["kind_label"], p["number"]) for p in cert.get_json()["proofs"]]
    assert shown == [("动物检疫合格证明", "4100123456"), ("肉品品质检验合格证明", "RP-77")]
    with sessions.begin() as session:  # quietly dropping a cited proof breaks the signature
        session.execute(delete(CertificateProof).where(CertificateProof.proof_id == proof["id"]))
    number = cert.get_json()["number"]
    tampered = client.get(f"/api/v1/certificates/{number}", headers=auth(buyer)).get_json()
    assert tampered["signature"]["verified"] is False
    types = client.get("/api/v1/proof-types", headers=auth(buyer)).get_json()
    assert [t["label"] for t in types["types"]] == [
        "动物检疫合格证明",
        "肉品品质检验合格证明",
        "检测报告",
        "其他质量安全合格证明",
    ]
    assert "无证不收" in types["rule"]
    assert types["photo_max_bytes_source"] == "本地设置"


def test_photos_are_limited_by_size_and_real_type(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    buyer = _buyer(client, admin_key)
    edge = b"\xff\xd8\xff" + b"\x00" * (PHOTO_MAX_BYTES - 3)
    assert _upload(client, buyer, edge).status_code == 201  # exactly the limit
    stored = _count(sessions, QualityProof)
    for photo, message in (
        (edge + b"\x00", "more than"),
        (b"GIF89a" + b"\x00" * 64, "JPEG or PNG"),
        (b"<svg onload=alert(1)>", "JPEG or PNG"),
        (b"", "empty"),
    ):
        refused = _upload(client, buyer, photo)
        assert refused.status_code == 422, photo[:8]
        assert message in refused.get_json()["detail"]
    bad_kind = _upload(client, buyer, JPEG, kind="guess")
    assert bad_kind.status_code == 422
    assert _count(sessions, QualityProof) == stored  # nothing half-stored


def test_a_proof_is_its_holders_only(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    buyer = _buyer(client, admin_key)
    proof = _upload(client, buyer, JPEG).get_json()
    other = _buyer(client, admin_key, "p-002")
    body = {**BOUGHT, "subject": "p-002", "proofs": [proof["id"]]}
    cited = client.post("/api/v1/certificates", json=body, headers=auth(other))
    assert cited.status_code == 422
    assert "not recorded by this holder" in cited.get_json()["detail"]
    assert client.get(f"/api/v1/proofs/{proof['id']}", headers=auth(other)).status_code == 403
    photo = client.get(f"/api/v1/proofs/{proof['id']}/photo", headers=auth(other))
    assert photo.status_code == 403
    forged = client.post(
        "/api/v1/subjects/p-001/proofs",
        json={"kind": "test_report", "number": "X-1"},
        headers=auth(other),
    )
    assert forged.status_code == 403
    assert client.get("/api/v1/proofs/999999", headers=auth(buyer)).status_code == 404
    assert _count(sessions, Certificate) == 0
