"""Recalls: regulators recall a lot; downstream lots are flagged; markets that took it listed."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.trace_helpers import (
    PURCHASER,
    auth,
    hand_over,
    issue,
    issuer,
    key,
    market,
    setup,
    subject,
)

LOT = {"product": "菠菜", "unit": "kg"}


def test_recall_flags_downstream_and_lists_markets(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    secret, parent = setup(client, admin_key)
    subject(client, admin_key, **PURCHASER)
    buyer = issuer(client, admin_key, "p-001")
    hand_over(client, secret, parent["number"])
    child = issue(client, buyer, subject="p-001", quantity=30, upstream=[parent["number"]])
    grandchild = issue(client, buyer, subject="p-001", quantity=10, upstream=[child["number"]])
    unrelated = issue(client, secret, quantity=5)
    market(sessions, "m-001", "rt-1")
    market(sessions, "m-002", "rt-2")
    for site, cert, qty in (
        ("m-001", parent, 10),
        ("m-002", grandchild, 10),
        ("m-002", unrelated, 5),
    ):
        lab = key(sessions, "lab", site_id=site)
        entry = client.post(
            f"/api/v1/sites/{site}/entries",
            headers=auth(lab),
            json={**LOT, "certificate": cert["code"], "quantity": qty},
        )
        assert entry.get_json()["status"] == "admitted"
    regulator = key(sessions, "regulator", district="郏县")
    url = f"/api/v1/certificates/{parent['number']}/recall"
    recalled = client.post(url, json={"reason": "抽检不合格：毒死蜱超标"}, headers=auth(regulator))
    assert recalled.status_code == 201
    body = recalled.get_json()
    assert body["downstream"] == sorted([child["number"], grandchild["number"]])
    assert [(m["site"], m["certificates"]) for m in body["markets"]] == [
        ("m-001", [parent["number"]]),
        ("m-002", [grandchild["number"]]),
    ]
    assert client.get(url, headers=auth(regulator)).get_json() == body
    assert client.post(url, json={"reason": "再次召回"}, headers=auth(regulator)).status_code == 409
    shown = client.get(f"/api/v1/certificates/{grandchild['number']}", headers=auth(admin_key))
    assert shown.get_json()["upstream_recalled"] is True
    assert shown.get_json()["recalled"] is False
    own = client.get(f"/api/v1/certificates/{parent['number']}", headers=auth(admin_key)).get_json()
    assert own["recalled"] is True
    unrelated_view = client.get(
        f"/api/v1/certificates/{unrelated['number']}", headers=auth(admin_key)
    )
    assert unrelated_view.get_json()["upstream_recalled"] is False


def test_recalled_lots_are_refused_and_not_reissued(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    producer, parent = setup(client, admin_key)
    subject(client, admin_key, **PURCHASER)
    buyer = issuer(client, admin_key, "p-001")
    hand_over(client, producer, parent["number"])
    child = issue(client, buyer, subject="p-001", quantity=10, upstream=[parent["number"]])
    client.post(
        f"/api/v1/certificates/{parent['number']}/recall",
        json={"reason": "阳性复检确认"},
        headers=auth(admin_key),
    )
    market(sessions)
    lab = key(sessions, "lab", site_id="m-001")
    for cert in (parent, child):
        entry = client.post(
            "/api/v1/sites/m-001/entries",
            headers=auth(lab),
            json={**LOT, "certificate": cert["code"], "quantity": 1},
        ).get_json()
        assert (entry["status"], entry["flags"]) == ("refused", ["certificate_recalled"])
    again = client.post(
        "/api/v1/certificates",
        headers=auth(buyer),
        json={
            "subject": "p-001",
            "product": "菠菜",
            "quantity": 1,
            "unit": "kg",
            "origin": "郏县",
            "basis": ["quality_control"],
            "upstream": [parent["number"]],
        },
    )
    assert again.status_code == 422
    label = client.get(f"/api/v1/certificates/{child['number']}/label.png", headers=auth(buyer))
    assert label.status_code == 409


def test_only_regulators_recall_within_their_district(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    secret, cert = setup(client, admin_key)
    url = f"/api/v1/certificates/{cert['number']}/recall"
    assert client.post(url, json={"reason": "自行召回"}, headers=auth(secret)).status_code == 403
    other = key(sessions, "regulator", district="新华区")
    assert client.post(url, json={"reason": "越区召回"}, headers=auth(other)).status_code == 403
    assert client.get(url, headers=auth(admin_key)).status_code == 404  # not recalled yet
