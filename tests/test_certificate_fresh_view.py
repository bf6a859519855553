"""The answer to POST /api/v1/certificates is byte for byte what GET answers for the same lot."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.models import Certificate, Subject
from fangxin.trace.certificates.views import certificate_view, fresh_view
from tests.helpers import counted
from tests.trace_helpers import (
    CERT,
    PURCHASER,
    auth,
    hand_over,
    issuer,
    link_site,
    market,
    post_results,
    result,
    subject,
)

LINKED_TABLES = ("certificate_links", "certificate_tests", "quality_proofs", "recalls")
IMPORT_2023 = {
    "template_version": "2023",
    "issued_at": "2026-03-02T09:30:00+08:00",
    "commitment": "我承诺收购销售的食用农产品符合要求",
    "basis": ["自我承诺"],
}
# Requests that link nothing, each varying what the view shows.
PLAIN: list[tuple[str, dict[str, Any]]] = [
    ("issuer", {}),
    ("issuer", {"quantity": 12.5, "unit": "公斤", "contact": "13800000000"}),
    ("issuer", {"basis": ["self_test", "quality_control"], "product": "韭菜", "unit": "把"}),
    ("issuer", {"gtin": "06141411234562", "lot": "A-7"}),
    ("issuer", {"gtin": "6141411234562", "quantity": 0.001, "unit": "t"}),
    ("admin", {**IMPORT_2023, "subject": "p-001"}),
    ("admin", {**IMPORT_2023, "basis": ["委托检测", "内部质量控制"]}),
]


def _post(client: FlaskClient, key: str, body: dict[str, Any]) -> tuple[bytes, list[str]]:
    engine: Engine = client.application.extensions["fangxin"].engine
    with counted(engine) as statements:
        response = client.post("/api/v1/certificates", json={**CERT, **body}, headers=auth(key))
    assert response.status_code == 201, response.get_json()
    return response.get_data(), statements


def _get(client: FlaskClient, key: str, number: str) -> bytes:
    response = client.get(f"/api/v1/certificates/{number}", headers=auth(key))
    assert response.status_code == 200
    return response.get_data()


def _keys(client: FlaskClient, admin_key: str) -> dict[str, str]:
    subject(client, admin_key, gtin_prefix="614141")
    subject(client, admin_key, **PURCHASER)
    return {
        "admin": admin_key,
        "issuer": issuer(client, admin_key, "s-001"),
        "buyer": issuer(client, admin_key, PURCHASER["id"]),
    }


@pytest.mark.parametrize(("who", "body"), PLAIN)
def test_a_lot_citing_nothing_is_answered_as_it_is_read_without_link_queries(
    client: FlaskClient, admin_key: str, who: str, body: dict[str, Any]
) -> None:
    keys = _keys(client, admin_key)
    posted, statements = _post(client, keys[who], body)
    number = client.application.json.loads(posted)["number"]
    assert posted == _get(client, admin_key, number)
    touched = [t for t in LINKED_TABLES if any(t in s for s in statements)]
    assert touched == []


def test_the_fresh_view_checks_the_signature_without_reading_the_key(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    keys = _keys(client, admin_key)
    posted, _ = _post(client, keys["issuer"], {})
    number = client.application.json.loads(posted)["number"]
    state = client.application.extensions["fangxin"]
    with sessions() as session:
        cert = session.scalars(select(Certificate).where(Certificate.number == number)).one()
        producer = session.get_one(Subject, "s-001")
        with counted(state.engine) as statements:
            fresh = fresh_view(session, cert, state.settings, producer, state.signer)
        assert statements == []
        assert fresh == certificate_view(session, cert, state.settings)
        assert fresh.signature.verified is True
        cert.product = "韭菜"  # what a forged row would say: the in-hand key refuses it
        forged = fresh_view(session, cert, state.settings, producer, state.signer)
        assert forged.signature.verified is False
        assert forged.signature.problem == "signature does not match the record"
        assert forged == certificate_view(session, cert, state.settings)
    assert b'"verified":true' in posted.replace(b" ", b"")


def test_lots_citing_upstream_tests_or_proofs_are_answered_as_they_are_read(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    keys = _keys(client, admin_key)
    market(sessions)
    post_results(sessions, [result("neg", 12.0)])
    link_site(client, admin_key, "s-001", "m-001")
    tested, _ = _post(
        client,
        keys["issuer"],
        {"basis": ["self_test"], "test_result": {"device": "rt-1", "id": "neg"}},
    )
    parent = client.application.json.loads(tested)
    assert parent["tests"] != []
    assert tested == _get(client, admin_key, parent["number"])  # before a child draws on it
    hand_over(client, keys["issuer"], parent["number"])
    drawn, _ = _post(client, keys["buyer"], {"subject": "p-001", "upstream": [parent["number"]]})
    child = client.application.json.loads(drawn)
    assert child["upstream"][0]["number"] == parent["number"]
    assert child["tests"] != []  # the parent's test reaches the re-issued lot
    assert drawn == _get(client, admin_key, child["number"])
    proof = client.post(
        "/api/v1/subjects/p-001/proofs",
        json={"kind": "test_report", "number": "JC-1", "issued_by": "郏县检测站"},
        headers=auth(keys["buyer"]),
    )
    assert proof.status_code == 201, proof.get_json()
    proved, _ = _post(
        client, keys["buyer"], {"subject": "p-001", "proofs": [proof.get_json()["id"]]}
    )
    shown = client.application.json.loads(proved)
    assert shown["proofs"] != []
    assert proved == _get(client, admin_key, shown["number"])
