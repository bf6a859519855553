"""Issuing 合格证: field rules, numbering, codes, evidence, re-issue reconciliation, voiding."""

from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.trace.certificates import issuance, records
from fangxin.trace.certificates.credit_code import check_credit_code
from fangxin.trace.certificates.models import Certificate
from fangxin.trace.certificates.schemas import CertificateIn, SubjectIn
from fangxin.trace.certificates.signing import generate
from fangxin.trace.certificates.subjects import add_subject
from tests.conftest import MovableClock
from tests.trace_helpers import (
    CERT,
    CREDIT_CODE,
    PRODUCER,
    PURCHASER,
    auth,
    issue,
    issuer,
    key,
    link_site,
    market,
    post_results,
    result,
    setup,
    subject,
)


def test_issue_returns_number_code_url_and_signature(client: FlaskClient, admin_key: str) -> None:
    _, cert = setup(client, admin_key)
    assert re.fullmatch(r"HGZ\d{8}-\d{6}", cert["number"])
    assert re.fullmatch(r"[A-Z2-7]{16}", cert["code"])  # 80 random bits, base32
    assert cert["url"] == f"http://localhost:8000/c/{cert['code']}"
    assert cert["status"] == "valid"
    assert cert["signature"]["verified"] is True
    assert cert["signature"]["alg"] == "Ed25519"
    assert cert["template"] == "producer"
    assert cert["template_version"] == "2026"
    assert cert["commitment"].startswith("我承诺生产销售的食用农产品")
    assert "未使用禁用农药、兽药及其他化合物" in cert["commitment"]
    assert cert["basis_labels"] == ["质量安全控制符合要求"]
    assert (cert["product"], cert["quantity"], cert["unit"]) == ("菠菜", 50.0, "kg")
    assert cert["subject_name"] == PRODUCER["name"]
    assert cert["contact"] == PRODUCER["contact"]


def test_numbers_are_sequential_and_codes_unique(
    client: FlaskClient, admin_key: str, clock: MovableClock
) -> None:
    clock.set(utcnow())  # both on one day, even if the test runs across midnight
    secret, first = setup(client, admin_key)
    second = issue(client, secret)
    day_first, seq_first = first["number"][3:].split("-")
    day_second, seq_second = second["number"][3:].split("-")
    assert day_first == day_second
    assert int(seq_second) == int(seq_first) + 1
    assert first["code"] != second["code"]


def test_numbering_is_safe_under_concurrency(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        producer = add_subject(session, SubjectIn.model_validate(PRODUCER))
        session.commit()
    signer = generate()
    numbers: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                with sessions() as session:
                    cert = issuance.issue(
                        session,
                        CertificateIn.model_validate(CERT),
                        session.get(type(producer), producer.id) or producer,
                        signer,
                        utcnow(),
                        "Asia/Shanghai",
                    )
                    session.commit()
                    numbers.append(cert.number)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(numbers)) == 20
    assert sorted(int(n[-6:]) for n in numbers) == list(range(1, 21))


@pytest.mark.parametrize(
    ("basis", "expected"),
    [
        (["self_test", "quality_control"], ["quality_control", "self_test"]),
        (["委托检测合格"], ["commissioned_test"]),
        (["自行检测合格"], ["self_test"]),
        (["自我承诺"], ["quality_control"]),  # the older four labels, mapped on import
        (["质量安全内部控制合格"], ["quality_control"]),
        (["自我检测合格"], ["self_test"]),
        (["质量安全控制符合要求", "quality_control"], ["quality_control"]),
    ],
)
def test_basis_is_normalised(basis: list[str], expected: list[str]) -> None:
    assert records.normalise_basis(basis) == expected


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"basis": []}, "basis"),
        ({"basis": ["trust_me"]}, "basis"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -5}, "quantity"),
        ({"quantity": 1.2345}, "quantity"),
        ({"unit": "桶装"}, "unit"),
        ({"product": ""}, "product"),
        ({"origin": ""}, "origin"),
        ({"origin": None}, "origin"),
        ({"lot": "L1"}, "lot"),
        ({"gtin": "09506000134352"}, "gtin"),  # the subject has no GS1 prefix
        ({"colour": "green"}, "colour"),
    ],
)
def test_field_rules(
    client: FlaskClient, admin_key: str, change: dict[str, Any], field: str
) -> None:
    subject(client, admin_key)
    body = {**CERT, **change}
    response = client.post("/api/v1/certificates", json=body, headers=auth(admin_key))
    assert response.status_code == 422
    assert field in {e["field"].split(".")[0] for e in response.get_json()["errors"]}


def test_units_are_normalised(client: FlaskClient, admin_key: str) -> None:
    secret, _ = setup(client, admin_key)
    assert issue(client, secret, unit="公斤", quantity="12.5")["unit"] == "kg"
    assert issue(client, secret, unit="箱", quantity=3)["quantity"] == 3.0


def test_credit_code_check() -> None:
    assert check_credit_code(CREDIT_CODE.lower()) == CREDIT_CODE
    assert check_credit_code("91350100M000100Y43") == "91350100M000100Y43"
    wrong = CREDIT_CODE[:-1] + ("0" if CREDIT_CODE[-1] != "0" else "1")
    for bad in (wrong, "123", CREDIT_CODE[:-1] + "I"):
        with pytest.raises(ValueError, match="credit code"):
            check_credit_code(bad)


def test_subject_registration_rules(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    bad = client.post(
        "/api/v1/subjects", json={**PRODUCER, "credit_code": "913501"}, headers=auth(admin_key)
    )
    assert bad.status_code == 422
    subject(client, admin_key)
    again = client.post("/api/v1/subjects", json=PRODUCER, headers=auth(admin_key))
    assert again.status_code == 409
    other_district = key(sessions, "regulator", district="新华区")
    refused = client.post(
        "/api/v1/subjects", json={**PURCHASER, "district": "郏县"}, headers=auth(other_district)
    )
    assert refused.status_code == 403
    assert (
        client.post("/api/v1/subjects", json=PURCHASER, headers=auth(other_district)).status_code
        == 201
    )
    lab = key(sessions, "lab", site_id="m-001")
    assert client.post("/api/v1/subjects", json=PRODUCER, headers=auth(lab)).status_code == 403


def test_issuer_keys_are_scoped_to_their_subject(client: FlaskClient, admin_key: str) -> None:
    secret, cert = setup(client, admin_key)
    subject(client, admin_key, **PURCHASER)
    purchaser_key = issuer(client, admin_key, "p-001")
    forged = client.post("/api/v1/certificates", json=CERT, headers=auth(purchaser_key))
    assert forged.status_code == 403
    revoke = client.post(
        f"/api/v1/certificates/{cert['number']}/revoke",
        json={"reason": "录入错误"},
        headers=auth(purchaser_key),
    )
    assert revoke.status_code == 403
    legacy = client.post(
        "/api/v1/certificates", json={**CERT, "template_version": "2019"}, headers=auth(secret)
    )
    assert legacy.status_code == 403
    assert (
        client.get(
            f"/api/v1/certificates/{cert['number']}", headers=auth(purchaser_key)
        ).status_code
        == 403
    )
    assert (
        client.get(f"/api/v1/certificates/{cert['number']}", headers=auth(secret)).status_code
        == 200
    )


def test_admin_imports_an_older_template(client: FlaskClient, admin_key: str) -> None:
    subject(client, admin_key)
    body = {
        **CERT,
        "template_version": "2019",
        "issued_at": "2023-05-04T09:30:00+08:00",
        "basis": ["自我承诺", "委托检测合格"],
        "commitment": "我承诺：不使用禁限用农药兽药及非法添加物；遵守安全间隔期、休药期规定。",
    }
    cert = issue(client, admin_key, **body)
    assert cert["template_version"] == "2019"
    assert cert["number"].startswith("HGZ20230504-")
    assert cert["basis"] == ["quality_control", "commissioned_test"]
    assert cert["basis_labels"] == ["自我承诺", "委托检测合格"]  # as printed
    assert cert["commitment"] == body["commitment"]
    assert cert["signature"]["verified"] is True


def test_voiding_keeps_the_record_and_says_so(
    client: FlaskClient, admin_key: str, clock: MovableClock
) -> None:
    secret, cert = setup(client, admin_key)
    voided_at = utcnow()
    clock.set(voided_at)
    url = f"/api/v1/certificates/{cert['number']}/revoke"
    assert client.post(url, json={"reason": "x"}, headers=auth(secret)).status_code == 422
    voided = client.post(url, json={"reason": "数量填写错误"}, headers=auth(secret))
    assert voided.status_code == 200
    body = voided.get_json()
    assert (body["status"], body["void_reason"]) == ("voided", "数量填写错误")
    assert dt.datetime.fromisoformat(body["voided_at"]) == voided_at
    assert body["signature"]["verified"] is True  # voiding does not touch the signed content
    assert client.post(url, json={"reason": "再次作废"}, headers=auth(secret)).status_code == 409
    shown = client.get(f"/api/v1/certificates/{cert['number']}", headers=auth(secret)).get_json()
    assert shown["status"] == "voided"


def test_evidence_must_be_a_negative_test_of_the_product(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    market(sessions)
    post_results(
        sessions, [result("neg", 12.0), result("pos", 71.0), result("other", 10.0, "韭菜")]
    )
    secret, _ = setup(client, admin_key)
    link_site(client, admin_key, "s-001", "m-001")
    good = issue(client, secret, basis=["self_test"], test_result={"device": "rt-1", "id": "neg"})
    assert [t["verdict"] for t in good["tests"]] == ["negative"]
    assert good["signed"]["evidence"] == {"device": "rt-1", "result": "neg"}
    for ref, basis, message in (
        ("pos", ["self_test"], "only negative"),
        ("other", ["self_test"], "not this lot"),
        ("neg", ["quality_control"], "needs the self_test basis"),
        ("nope", ["self_test"], "no such"),
    ):
        response = client.post(
            "/api/v1/certificates",
            json={**CERT, "basis": basis, "test_result": {"device": "rt-1", "id": ref}},
            headers=auth(secret),
        )
        assert response.status_code == 422
        assert message in response.get_json()["detail"]


def test_quantities_are_exact(sessions: sessionmaker[Session]) -> None:
    assert records.to_milli(Decimal("0.001")) == 1
    assert records.format_quantity(12500) == "12.5"
    assert records.format_quantity(50000) == "50"
    with sessions() as session:
        assert session.scalars(select(Certificate)).all() == []


def test_unknown_certificate_is_404(client: FlaskClient, admin_key: str) -> None:
    response = client.get("/api/v1/certificates/HGZ19990101-000001", headers=auth(admin_key))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
