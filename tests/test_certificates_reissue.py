"""Re-issue by purchasers: split and merged lots reconcile with their upstream certificates."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.trace_helpers import (
    CERT,
    PURCHASER,
    auth,
    hand_over,
    issue,
    issuer,
    setup,
    subject,
)


def _purchaser(client: FlaskClient, admin_key: str) -> str:
    subject(client, admin_key, **PURCHASER)
    return issuer(client, admin_key, "p-001")


def test_split_lots_never_exceed_the_parent(client: FlaskClient, admin_key: str) -> None:
    producer, parent = setup(client, admin_key)
    buyer = _purchaser(client, admin_key)
    hand_over(client, producer, parent["number"])
    up = [{"certificate": parent["number"], "quantity": 30}]
    first = issue(client, buyer, subject="p-001", quantity=30, upstream=up)
    assert first["template"] == "purchaser"
    assert first["commitment"].startswith("我承诺收购销售的食用农产品")
    assert first["upstream"][0]["number"] == parent["number"]
    assert first["upstream"][0]["quantity"] == 30.0
    # Scanned code instead of number; a single parent may omit the quantity drawn.
    second = issue(client, buyer, subject="p-001", quantity=20, upstream=[parent["code"]])
    assert second["signed"]["upstream"] == [{"number": parent["number"], "quantity": "20"}]
    over = client.post(
        "/api/v1/certificates",
        headers=auth(buyer),
        json={**CERT, "subject": "p-001", "quantity": 1, "upstream": [parent["number"]]},
    )
    assert over.status_code == 422
    assert "has 0 kg left" in over.get_json()["detail"]
    parent_view = client.get(f"/api/v1/certificates/{parent['number']}", headers=auth(admin_key))
    assert {d["number"] for d in parent_view.get_json()["downstream"]} == {
        first["number"],
        second["number"],
    }
    # Voiding a child gives its quantity back to the parent.
    client.post(
        f"/api/v1/certificates/{second['number']}/revoke",
        json={"reason": "分装取消"},
        headers=auth(buyer),
    )
    assert issue(client, buyer, subject="p-001", quantity=20, upstream=[parent["number"]])


def test_merged_lots_reconcile(client: FlaskClient, admin_key: str) -> None:
    secret, a = setup(client, admin_key)
    b = issue(client, secret, quantity=30)
    buyer = _purchaser(client, admin_key)
    hand_over(client, secret, a["number"])
    hand_over(client, secret, b["number"])
    ups = [
        {"certificate": a["number"], "quantity": 20},
        {"certificate": b["number"], "quantity": 10},
    ]
    merged = issue(client, buyer, subject="p-001", quantity=30, upstream=ups)
    assert {u["number"] for u in merged["upstream"]} == {a["number"], b["number"]}
    small = [
        {"certificate": a["number"], "quantity": 5},
        {"certificate": b["number"], "quantity": 5},
    ]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"quantity": 11, "upstream": small}, "exceeds"),
        (
            {"quantity": 10, "upstream": [{"certificate": b["number"], "quantity": 21}]},
            "20 kg left",
        ),
        ({"quantity": 10, "upstream": [a["number"], b["number"]]}, "each"),
        ({"quantity": 10, "upstream": [a["number"], a["code"]]}, "each"),
        ({"quantity": 10, "upstream": [{"certificate": a["number"], "quantity": 10}] * 2}, "twice"),
        ({"quantity": 10, "unit": "斤", "upstream": [b["number"]]}, "not the same lot"),
        ({"quantity": 10, "product": "韭菜", "upstream": [b["number"]]}, "not the same lot"),
        ({"quantity": 10, "upstream": ["HGZ19990101-000001"]}, "no certificate"),
    ]
    for change, message in cases:
        response = client.post(
            "/api/v1/certificates", headers=auth(buyer), json={**CERT, "subject": "p-001", **change}
        )
        assert response.status_code == 422, change
        assert message in response.get_json()["detail"], response.get_json()


def test_only_purchasers_reissue_and_not_from_voided(client: FlaskClient, admin_key: str) -> None:
    secret, parent = setup(client, admin_key)
    own = client.post(
        "/api/v1/certificates",
        headers=auth(secret),
        json={**CERT, "quantity": 5, "upstream": [parent["number"]]},
    )
    assert own.status_code == 422
    assert "only purchasers" in own.get_json()["detail"]
    buyer = _purchaser(client, admin_key)
    hand_over(client, secret, parent["number"])
    client.post(
        f"/api/v1/certificates/{parent['number']}/revoke",
        json={"reason": "作废测试"},
        headers=auth(secret),
    )
    response = client.post(
        "/api/v1/certificates",
        headers=auth(buyer),
        json={**CERT, "subject": "p-001", "quantity": 5, "upstream": [parent["number"]]},
    )
    assert response.status_code == 422
    assert "voided" in response.get_json()["detail"]
