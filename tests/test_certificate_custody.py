"""Issue 11 §4b/§4c: evidence only from the subject's own or commissioned sites; upstream lots
only when transferred to the purchaser or admitted at its site. Attacks go through HTTP."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.models import Certificate, CertificateLink
from tests.trace_helpers import (
    CERT,
    PURCHASER,
    auth,
    hand_over,
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


def _count(sessions: sessionmaker[Session], model: type[Certificate | CertificateLink]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_issuer_cannot_cite_another_sites_test(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    market(sessions, "m-001", "rt-1")
    market(sessions, "m-002", "rt-2")
    post_results(sessions, [result("mine", 10.0)], "m-001", "rt-1")
    post_results(sessions, [result("theirs", 10.0)], "m-002", "rt-2")
    secret, _ = setup(client, admin_key)
    before = _count(sessions, Certificate)
    cite = {**CERT, "basis": ["self_test"], "test_result": {"device": "rt-2", "id": "theirs"}}
    stolen = client.post("/api/v1/certificates", json=cite, headers=auth(secret))
    assert stolen.status_code == 403
    assert stolen.mimetype == "application/problem+json"
    assert "m-002" in stolen.get_json()["detail"]
    assert "委托检测" in stolen.get_json()["detail"]
    assert _count(sessions, Certificate) == before  # nothing stored
    # Its own site, linked by a regulator of the subject's district (郏县), counts as self_test.
    link_site(client, key(sessions, "regulator", district="郏县"), "s-001", "m-001")
    own = {**cite, "test_result": {"device": "rt-1", "id": "mine"}}
    assert client.post("/api/v1/certificates", json=own, headers=auth(secret)).status_code == 201
    # A commissioned lab's test supports commissioned_test, not self_test.
    link_site(client, admin_key, "s-001", "m-002", "commissioned")
    wrong = client.post("/api/v1/certificates", json=cite, headers=auth(secret))
    assert wrong.status_code == 422
    assert "commissioned_test" in wrong.get_json()["detail"]
    hired = {**cite, "basis": ["commissioned_test"]}
    made = client.post("/api/v1/certificates", json=hired, headers=auth(secret))
    assert made.status_code == 201
    assert made.get_json()["tests"][0]["site"] == "m-002"
    # Ending the commission ends the right to cite its tests.
    assert (
        client.delete("/api/v1/subjects/s-001/sites/m-002", headers=auth(admin_key)).status_code
        == 200
    )
    again = client.post("/api/v1/certificates", json=hired, headers=auth(secret))
    assert again.status_code == 403


def test_site_links_are_registered_by_the_subjects_regulators_only(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    market(sessions, "m-001", "rt-1")
    secret, _ = setup(client, admin_key)
    url = "/api/v1/subjects/s-001/sites"
    body = {"site": "m-001", "relation": "commissioned"}
    other_district = key(sessions, "regulator", district="新华区")
    lab = key(sessions, "lab", site_id="m-001")
    for caller in (secret, other_district, lab):
        refused = client.post(url, json=body, headers=auth(caller))
        assert refused.status_code == 403, refused.get_json()
    assert client.get(url, headers=auth(secret)).get_json() == []
    unknown = client.post(url, json={**body, "site": "m-404"}, headers=auth(admin_key))
    assert unknown.status_code == 422
    assert "m-404" in unknown.get_json()["detail"]
    link_site(client, admin_key, "s-001", "m-001", "commissioned")
    twice = client.post(url, json={**body, "relation": "own"}, headers=auth(admin_key))
    assert twice.status_code == 422
    listed = client.get(url, headers=auth(secret)).get_json()
    assert [(x["site"], x["relation"]) for x in listed] == [("m-001", "commissioned")]
    subject(client, admin_key, **PURCHASER)
    stranger = issuer(client, admin_key, "p-001")
    assert client.get(url, headers=auth(stranger)).status_code == 403


def test_another_districts_purchaser_cannot_drain_a_lot(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    producer, parent = setup(client, admin_key)
    subject(client, admin_key, **PURCHASER)
    buyer = issuer(client, admin_key, "p-001")
    subject(client, admin_key, **{**PURCHASER, "id": "p-002", "district": "宝丰县"})
    thief = issuer(client, admin_key, "p-002")
    hand_over(client, producer, parent["number"], "p-001")
    certificates, links = _count(sessions, Certificate), _count(sessions, CertificateLink)
    drain = {**CERT, "subject": "p-002", "upstream": [parent["number"]]}
    refused = client.post("/api/v1/certificates", json=drain, headers=auth(thief))
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert "neither transferred to p-002" in refused.get_json()["detail"]
    by_code = {**drain, "upstream": [{"certificate": parent["code"], "quantity": 1}]}
    assert client.post("/api/v1/certificates", json=by_code, headers=auth(thief)).status_code == 403
    # The thief cannot hand the lot to itself either: only the issuer transfers.
    url = f"/api/v1/certificates/{parent['number']}/transfers"
    assert client.post(url, json={"purchaser": "p-002"}, headers=auth(thief)).status_code == 403
    assert (_count(sessions, Certificate), _count(sessions, CertificateLink)) == (
        certificates,
        links,
    )
    # Nothing was drained: the purchaser it was handed to still draws all 50 kg.
    mine = issue(client, buyer, subject="p-001", upstream=[parent["number"]])
    assert mine["upstream"][0]["quantity"] == 50.0
    shown = client.get(url, headers=auth(producer)).get_json()
    assert [t["purchaser"] for t in shown] == ["p-001"]


def test_a_lot_admitted_at_the_purchasers_own_site_may_be_reissued(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    market(sessions, "m-001", "rt-1")
    market(sessions, "m-002", "rt-2")
    _, parent = setup(client, admin_key)
    subject(client, admin_key, **PURCHASER)
    buyer = issuer(client, admin_key, "p-001")
    link_site(client, admin_key, "p-001", "m-001")
    lot = {"product": "菠菜", "quantity": 20, "unit": "kg", "certificate": parent["code"]}
    # Admitted at a market that is not the purchaser's: no right to re-issue.
    elsewhere = key(sessions, "lab", site_id="m-002")
    entry = client.post("/api/v1/sites/m-002/entries", json=lot, headers=auth(elsewhere))
    assert entry.get_json()["status"] == "admitted"
    body = {**CERT, "subject": "p-001", "quantity": 20, "upstream": [parent["number"]]}
    assert client.post("/api/v1/certificates", json=body, headers=auth(buyer)).status_code == 403
    at_own = key(sessions, "lab", site_id="m-001")
    entry = client.post("/api/v1/sites/m-001/entries", json=lot, headers=auth(at_own))
    assert entry.get_json()["status"] == "admitted"
    made = client.post("/api/v1/certificates", json=body, headers=auth(buyer))
    assert made.status_code == 201, made.get_json()
