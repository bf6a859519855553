"""Market entry checks: certificate checks, waiting for a rapid test, the day's rate in status."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.models import CertificateTest
from tests.trace_helpers import auth, key, market, post_results, result, setup

LOT = {"product": "菠菜", "quantity": 20, "unit": "kg"}


def check(client: FlaskClient, lab: str, site: str = "m-001", **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/sites/{site}/entries", json={**LOT, **body}, headers=auth(lab))
    assert response.status_code == 201, response.get_json()
    out: dict[str, Any] = response.get_json()
    return out


@pytest.fixture
def lab(sessions: sessionmaker[Session]) -> str:
    market(sessions)
    return key(sessions, "lab", site_id="m-001")


def test_matching_certificate_is_admitted(client: FlaskClient, admin_key: str, lab: str) -> None:
    _, cert = setup(client, admin_key)
    by_code = check(client, lab, certificate=cert["code"])
    assert (by_code["status"], by_code["flags"]) == ("admitted", [])
    assert by_code["certificate"] == cert["number"]
    assert by_code["decided_at"] is not None
    by_url = check(client, lab, certificate=cert["url"], quantity=10)  # what the scanner read
    assert by_url["status"] == "admitted"
    by_number = check(client, lab, certificate=cert["number"], quantity=21)
    assert by_number["status"] == "pending_test"  # 20 + 10 + 21 > the certificate's 50 kg
    assert by_number["flags"] == ["quantity_exceeds_certificate"]


@pytest.mark.parametrize(
    ("lot", "flags"),
    [
        ({"product": "韭菜"}, ["product_mismatch"]),
        ({"quantity": 60}, ["quantity_exceeds_certificate"]),
        ({"unit": "箱"}, ["unit_mismatch"]),
        ({"product": "韭菜", "unit": "斤"}, ["product_mismatch", "unit_mismatch"]),
    ],
)
def test_mismatches_are_flagged_and_wait_for_a_test(
    client: FlaskClient, admin_key: str, lab: str, lot: dict[str, Any], flags: list[str]
) -> None:
    _, cert = setup(client, admin_key)
    entry = check(client, lab, certificate=cert["code"], **lot)
    assert entry["status"] == "pending_test"
    assert entry["flags"] == flags


def test_bad_certificates_are_refused_unknown_ones_are_not(
    client: FlaskClient, admin_key: str, lab: str, sessions: sessionmaker[Session]
) -> None:
    secret, cert = setup(client, admin_key)
    unknown = check(client, lab, certificate="AAAAAAAAAAAAAAAA")
    # Not refused: a certificate fangxin does not know waits for a visual check (2026 rules).
    assert (unknown["status"], unknown["flags"]) == (
        "external_certificate",
        ["certificate_unknown"],
    )
    client.post(
        f"/api/v1/certificates/{cert['number']}/revoke",
        json={"reason": "作废"},
        headers=auth(secret),
    )
    voided = check(client, lab, certificate=cert["code"])
    assert (voided["status"], voided["flags"]) == ("refused", ["certificate_voided"])


def test_no_certificate_waits_for_a_negative_test(
    client: FlaskClient, lab: str, sessions: sessionmaker[Session]
) -> None:
    entry = check(client, lab, certificate=None, stall="A-12")
    assert (entry["status"], entry["flags"]) == ("pending_test", ["no_certificate"])
    url = f"/api/v1/sites/m-001/entries/{entry['id']}"
    post_results(sessions, [result("other-food", 10.0, sample="韭菜")])
    post_results(sessions, [result("retest", 45.0)])  # suspect: still waiting
    assert client.get(url, headers=auth(lab)).get_json()["status"] == "pending_test"
    negative = result("ok", 12.0)
    post_results(sessions, [negative])
    post_results(sessions, [negative])  # a redelivery changes nothing
    shown = client.get(url, headers=auth(lab)).get_json()
    assert shown["status"] == "admitted"
    assert shown["flags"] == ["no_certificate", "tested_negative"]
    assert shown["test_result"] == {"device": "rt-1", "id": "ok"}
    assert shown["decided_at"] is not None


def test_a_positive_test_refuses_the_lot(
    client: FlaskClient, lab: str, sessions: sessionmaker[Session]
) -> None:
    first = check(client, lab, certificate=None)
    second = check(client, lab, certificate=None)
    post_results(sessions, [result("bad", 72.0)])
    refused = client.get(f"/api/v1/sites/m-001/entries/{first['id']}", headers=auth(lab)).get_json()
    assert (refused["status"], refused["flags"][-1]) == ("refused", "tested_positive")
    # One result decides one lot: the second lot still waits for its own test.
    waiting = client.get(f"/api/v1/sites/m-001/entries/{second['id']}", headers=auth(lab))
    assert waiting.get_json()["status"] == "pending_test"


def test_lab_results_naming_a_certificate_are_linked(
    client: FlaskClient, admin_key: str, lab: str, sessions: sessionmaker[Session]
) -> None:
    _, cert = setup(client, admin_key)
    check(client, lab, certificate=cert["code"])  # the lot came through this market (issue 11)
    post_results(sessions, [result("r-7", 8.0, certificate=cert["number"])] * 2)
    with sessions() as session:
        links = session.scalars(select(CertificateTest)).all()
        assert sorted(link.source for link in links) == ["lab"]
    shown = client.get(f"/api/v1/certificates/{cert['number']}", headers=auth(lab)).get_json()
    assert [(t["id"], t["verdict"], t["site"]) for t in shown["tests"]] == [
        ("r-7", "negative", "m-001")
    ]


def test_entry_check_rate_in_status(
    client: FlaskClient, admin_key: str, lab: str, sessions: sessionmaker[Session]
) -> None:
    _, cert = setup(client, admin_key)
    check(client, lab, certificate=cert["code"])
    check(client, lab, certificate=None)
    check(client, lab, certificate=None)
    check(client, lab, certificate="AAAAAAAAAAAAAAAA")
    post_results(sessions, [result("ok", 5.0)])
    status = client.get("/api/v1/sites/m-001/status").get_json()
    today = status["entry_checks_today"]
    assert (
        today["lots"],
        today["admitted"],
        today["pending_test"],
        today["refused"],
        today["external_certificate"],
    ) == (4, 2, 1, 0, 1)
    assert today["admitted_on_certificate"] == 1
    assert today["entry_check_rate"] == 0.5  # the unknown certificate awaits its visual check
    assert today["certificate_rate"] == 0.25
    assert today["certificates_seen"] == 1
    assert status["entry_checks_waiting_for_test"] == 1
    assert status["entry_checks_waiting_for_visual_check"] == 1


def test_entry_checks_are_scoped_to_the_market(
    client: FlaskClient, lab: str, sessions: sessionmaker[Session]
) -> None:
    market(sessions, "m-002", "rt-2")
    response = client.post(
        "/api/v1/sites/m-002/entries", json={**LOT, "certificate": None}, headers=auth(lab)
    )
    assert response.status_code == 403
    issuer_like = key(sessions, "regulator")
    assert (
        client.post(
            "/api/v1/sites/m-001/entries",
            json={**LOT, "certificate": None},
            headers=auth(issuer_like),
        ).status_code
        == 403
    )
    missing = client.post("/api/v1/sites/m-001/entries", json=LOT, headers=auth(lab))
    assert missing.status_code == 422  # "certificate" must be given, even as null
    bad_unit = client.post(
        "/api/v1/sites/m-001/entries",
        json={**LOT, "certificate": None, "unit": "桶装"},
        headers=auth(lab),
    )
    assert bad_unit.status_code == 422
