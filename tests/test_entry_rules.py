"""Entry checks under the 2026 rules: external certificates, other proofs, fitting test items."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.entry_proofs import MAX_PHOTO_BYTES, EntryProof
from fangxin.trace.certificates.entry_rules import categories
from fangxin.trace.certificates.models import EntryCheck
from fangxin.trace.results.models import TestItem
from tests.trace_helpers import auth, key, market, post_results, result, setup

LOT = {"product": "菠菜", "quantity": 20, "unit": "kg"}
ORDER_4 = "农业农村部令2025年第4号"


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buf, format="PNG")
    return buf.getvalue()


def proof(kind: str = "animal_quarantine", photo: bytes | None = None) -> dict[str, str]:
    return {
        "type": kind,
        "number": "4100123456",
        "photo": base64.b64encode(png() if photo is None else photo).decode(),
    }


def post(client: FlaskClient, lab: str, **body: Any) -> Any:
    return client.post("/api/v1/sites/m-001/entries", json={**LOT, **body}, headers=auth(lab))


def check(client: FlaskClient, lab: str, **body: Any) -> dict[str, Any]:
    response = post(client, lab, **body)
    assert response.status_code == 201, response.get_json()
    out: dict[str, Any] = response.get_json()
    return out


def shown(client: FlaskClient, lab: str, entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = client.get(
        f"/api/v1/sites/m-001/entries/{entry['id']}", headers=auth(lab)
    ).get_json()
    return out


def visual(client: FlaskClient, lab: str, entry: dict[str, Any], outcome: str) -> Any:
    return client.post(
        f"/api/v1/sites/m-001/entries/{entry['id']}/visual-check",
        json={"outcome": outcome, "note": "纸质合格证与货物一致"},
        headers=auth(lab),
    )


@pytest.fixture
def lab(sessions: sessionmaker[Session]) -> str:
    market(sessions)
    return key(sessions, "lab", site_id="m-001")


def test_an_unknown_certificate_is_checked_by_eye_then_admitted(
    client: FlaskClient, lab: str
) -> None:
    entry = check(client, lab, certificate="HGZ-手写-0001")
    assert (entry["status"], entry["flags"]) == ("external_certificate", ["certificate_unknown"])
    assert entry["decided_at"] is None
    assert any(ORDER_4 in r["source"] for r in entry["rules"])
    done = visual(client, lab, entry, "admit")
    assert done.status_code == 200
    body = done.get_json()
    assert (body["status"], body["flags"][-1]) == ("admitted", "visual_check_passed")
    assert body["visual_note"] == "纸质合格证与货物一致"
    assert body["decided_at"] is not None
    assert visual(client, lab, entry, "admit").status_code == 409  # decided once


def test_a_visual_check_may_send_the_lot_to_a_test_or_refuse_it(
    client: FlaskClient, lab: str, sessions: sessionmaker[Session]
) -> None:
    tested = check(client, lab, certificate="https://other.example/trace?id=77")
    refused = check(client, lab, certificate="OTHER-SYSTEM-1")
    assert visual(client, lab, tested, "test").get_json()["status"] == "pending_test"
    assert visual(client, lab, refused, "refuse").get_json()["status"] == "refused"
    post_results(sessions, [result("ok", 10.0)])
    assert shown(client, lab, tested)["status"] == "admitted"
    assert visual(client, lab, tested, "admit").status_code == 409  # not awaiting one
    bad = client.post(
        f"/api/v1/sites/m-001/entries/{tested['id']}/visual-check",
        json={"outcome": "return"},
        headers=auth(lab),
    )
    assert bad.status_code == 422


def test_other_proofs_are_recorded_with_type_number_and_photo(
    client: FlaskClient, lab: str
) -> None:
    entry = check(
        client,
        lab,
        certificate=None,
        product="猪肉",
        category="畜禽肉",
        proofs=[proof(), proof("meat_quality")],
    )
    assert (entry["status"], entry["flags"]) == ("external_certificate", ["other_proof"])
    assert [(p["type_name"], p["number"]) for p in entry["proofs"]] == [
        ("动物检疫合格证明", "4100123456"),
        ("肉品品质检验合格证明", "4100123456"),
    ]
    assert "动物防疫法" in entry["proofs"][0]["source"]
    url = f"/api/v1/sites/m-001/entries/{entry['id']}/proofs/{entry['proofs'][0]['id']}/photo"
    photo = client.get(url, headers=auth(lab))
    assert (photo.status_code, photo.mimetype, photo.data) == (200, "image/png", png())
    assert client.get(url.replace("/proofs/", "/proofs/9"), headers=auth(lab)).status_code == 404


@pytest.mark.parametrize(
    ("photo", "field"),
    [
        (b"GIF89a" + b"\0" * 10, "proofs[0].photo"),  # not a JPEG or PNG
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_PHOTO_BYTES - 7), "proofs[0].photo"),  # 1 byte over
    ],
)
def test_a_bad_photo_stores_nothing(
    client: FlaskClient, lab: str, sessions: sessionmaker[Session], photo: bytes, field: str
) -> None:
    response = post(client, lab, certificate=None, proofs=[proof(photo=photo)])
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == field
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(EntryCheck)) == 0
        assert session.scalar(select(func.count()).select_from(EntryProof)) == 0


def test_a_photo_of_the_largest_size_is_kept(client: FlaskClient, lab: str) -> None:
    photo = b"\xff\xd8\xff" + b"\0" * (MAX_PHOTO_BYTES - 3)
    entry = check(client, lab, certificate=None, proofs=[proof(photo=photo)])
    assert entry["proofs"][0]["photo_type"] == "image/jpeg"


def test_unknown_proof_type_is_refused(client: FlaskClient, lab: str) -> None:
    response = post(client, lab, certificate=None, proofs=[proof("receipt")])
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("lot", "test", "status", "source"),
    [
        # Vegetables: a pesticide item admits (by the result's category, or an alias).
        ({}, result("v", 10.0), "admitted", "GB 2763-2021"),
        ({"category": "叶菜类蔬菜"}, result("v", 10.0), "admitted", "GB 2763-2021"),
        # Meat: only β-agonists admit, a pesticide test does not.
        (
            {"product": "猪肉", "category": "畜禽肉"},
            result("m", 0.0, sample="猪肉", item="clenbuterol", unit="µg/kg", verdict="negative"),
            "admitted",
            "整顿办函〔2010〕50号",
        ),
        (
            {"product": "猪肉", "category": "猪肉"},
            result("m", 10.0, sample="猪肉"),
            "pending_test",
            "整顿办函〔2010〕50号",
        ),
        # Aquatic products: malachite green admits.
        (
            {"product": "草鱼", "category": "水产品"},
            result(
                "a", 0.0, sample="草鱼", item="malachite-green", unit="µg/kg", verdict="negative"
            ),
            "admitted",
            "农业农村部公告第250号",
        ),
        # Fruit: the enzyme test covers vegetables only.
        (
            {"product": "苹果", "category": "水果"},
            result("f", 5.0, sample="苹果"),
            "pending_test",
            "仅适用于蔬菜",
        ),
        # A category the table lacks: no test can be said to fit.
        ({"category": "杂货"}, result("x", 5.0, sample="菠菜"), "pending_test", "不在对照表"),
    ],
)
def test_a_negative_admits_only_when_the_item_fits_the_category(
    client: FlaskClient,
    lab: str,
    sessions: sessionmaker[Session],
    lot: dict[str, Any],
    test: dict[str, Any],
    status: str,
    source: str,
) -> None:
    entry = check(client, lab, certificate=None, **lot)
    # the case was built when the module was collected: the test is of now, after the entry
    post_results(sessions, [{**test, "ts": result("now", 0.0)["ts"]}])
    after = shown(client, lab, entry)
    assert after["status"] == status
    assert ("test_item_unfit" in after["flags"]) is (status == "pending_test")
    assert (after["test_result"] is None) is (status == "pending_test")
    fit_rules = [r for r in after["rules"] if r["name"] == "检测项目与食品类别"]
    assert len(fit_rules) == 1, after["rules"]
    assert source in fit_rules[0]["source"]


def test_a_fitting_test_after_an_unfit_one_admits(
    client: FlaskClient, lab: str, sessions: sessionmaker[Session]
) -> None:
    entry = check(client, lab, certificate=None, product="猪肉", category="畜禽肉")
    post_results(sessions, [result("p", 10.0, sample="猪肉")])
    post_results(
        sessions,
        [result("c", 0.0, sample="猪肉", item="ractopamine", unit="µg/kg", verdict="negative")],
    )
    after = shown(client, lab, entry)
    assert after["status"] == "admitted"
    assert after["flags"] == ["no_certificate", "test_item_unfit", "tested_negative"]
    assert after["test_result"] == {"device": "rt-1", "id": "c"}


def test_a_positive_refuses_whatever_the_item(
    client: FlaskClient, lab: str, sessions: sessionmaker[Session]
) -> None:
    entry = check(client, lab, certificate=None, product="猪肉", category="畜禽肉")
    post_results(sessions, [result("p", 80.0, sample="猪肉")])
    assert shown(client, lab, entry)["status"] == "refused"


def test_the_fit_table_names_catalogue_items(sessions: sessionmaker[Session]) -> None:
    named = {item for cat in categories().values() for item in cat.items}
    with sessions() as session:
        known = set(session.scalars(select(TestItem.code)))
    assert named - known == set()  # every item the fit table names is in the catalogue
    assert {"pesticide-ache", "clenbuterol", "malachite-green"} <= named & known


def test_a_known_certificate_with_a_proof_is_admitted_on_the_certificate(
    client: FlaskClient, admin_key: str, lab: str
) -> None:
    _, cert = setup(client, admin_key)
    entry = check(client, lab, certificate=cert["code"], proofs=[proof("test_report")])
    assert (entry["status"], entry["flags"]) == ("admitted", ["other_proof"])
    assert [r["name"] for r in entry["rules"]] == ["合格证查验", "检测报告"]
