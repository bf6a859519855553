"""Role x endpoint table: every route of the app, every kind of caller, allowed or refused.

Callers: anonymous, admin, regulator of 新华区 (A), regulator of 卫东区 (B), lab of m-001 (S),
lab of m-002, issuer of s-001 (X), issuer of s-002. The seeded objects all belong to district A,
site S and subject X. Codes per caller, in CALLERS order:
  o  allowed: not 401, 403 or 404        p  public: not 401 or 403 (unknown ids may 404)
  1  401                                  3  403
  d  refused: 403, or 404 where the design hides another scope's objects
  r  dashboard page: bearer keys do not sign in, so a redirect to /login
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import SiteIn
from fangxin.service.auth import (
    Principal,
    check_district,
    check_site,
    in_scope,
    own_district,
    scoped_district,
)
from fangxin.service.problems import Problem
from fangxin.trace.results.followup_models import Followup, FollowupAlert
from tests.devices_helpers import at, feed
from tests.pages_helpers import seed_city
from tests.results_helpers import pristine_catalogue, seeded_catalogue  # noqa: F401
from tests.test_entry_rules import png
from tests.trace_helpers import CERT, PRODUCER, auth, issue, key

CALLERS = ("anon", "admin", "reg_a", "reg_b", "lab_s", "lab_o", "iss_x", "iss_o")
# Least privileged first: refused calls change nothing, so allowed ones find the seeds intact.
ORDER = ("anon", "iss_o", "lab_o", "reg_b", "iss_x", "lab_s", "reg_a", "admin")
PUBLIC = "p p p p p p p p"
ADMIN = "1 o 3 3 3 3 3 3"
REGULATOR = "1 o o o 3 3 3 3"
REG_SCOPED = "1 o o d 3 3 3 3"
DASH = "r r r r r r r r"
SITE = {"kind": "market", "district": "新华区", "name": "新市场"}
PHOTO = base64.b64encode(png()).decode()
PROOF = {"type": "test_report", "number": "R-1", "photo": PHOTO}
ENTRY = {"certificate": None, "product": "菠菜", "quantity": 5, "unit": "kg", "proofs": [PROOF]}
RESULT = {
    "site": "m-001",
    "device": "rt-1",
    "id": "role-r",
    "ts": "2026-11-29T09:00:00+08:00",
    "item": "pesticide-ache",
    "value": 10.0,
    "unit": "%",
    "sample": {"name": "菠菜", "category": "蔬菜"},
}
PLAN_ROWS = {
    "source": "角色测试",
    "rows": [{"district": "新华区", "from": "2025-01-01", "to": "2025-01-31", "batches": 1}],
}

# "METHOD rule": (url, json body or None, expected codes). Order matters for writes.
TABLE: dict[str, tuple[str, Any, str]] = {
    "GET /healthz": ("/healthz", None, PUBLIC),
    "GET /readyz": ("/readyz", None, PUBLIC),
    "GET /metrics": ("/metrics", None, PUBLIC),
    "GET /openapi.json": ("/openapi.json", None, PUBLIC),
    "GET /.well-known/fangxin-keys.json": ("/.well-known/fangxin-keys.json", None, PUBLIC),
    "GET /favicon.ico": ("/favicon.ico", None, PUBLIC),
    "GET /static/<path:filename>": ("/static/scan.css", None, PUBLIC),
    "GET /c/<code>": ("/c/{code}", None, PUBLIC),
    "GET /01/<path:rest>": ("/01/06901234567892/10/L1", None, PUBLIC),
    "GET /m/<site_id>/board": ("/m/m-001/board", None, PUBLIC),
    "GET /api/v1/sites/<site_id>/results": ("/api/v1/sites/m-001/results", None, PUBLIC),
    # The smart-market screen (tests, positives, devices online) is public like the board.
    "GET /api/v1/sites/<site_id>/status": ("/api/v1/sites/m-001/status", None, PUBLIC),
    "GET /api/v1/catalogue": ("/api/v1/catalogue", None, PUBLIC),
    "GET /api/v1/catalogue/<code>": ("/api/v1/catalogue/pesticide-ache", None, PUBLIC),
    "GET /api/v1/catalogue/<code>/lots": ("/api/v1/catalogue/clenbuterol/lots", None, PUBLIC),
    "GET /login": ("/login", None, PUBLIC),
    "POST /login": ("/login", None, PUBLIC),  # 400 without the form's CSRF token
    "POST /logout": ("/logout", None, PUBLIC),
    "GET /": ("/", None, DASH),
    "GET /charts/<metric>.svg": ("/charts/online.svg", None, DASH),
    "GET /devices/<device_id>": ("/devices/cam-1", None, DASH),
    "GET /kpi": ("/kpi", None, DASH),
    "GET /kpi.xlsx": ("/kpi.xlsx", None, DASH),
    "GET /uptime.<fmt>": ("/uptime.csv", None, DASH),
    "GET /labels/<number>.pdf": ("/labels/{number}.pdf", None, DASH),
    "GET /sites/<site_id>": ("/sites/m-001", None, DASH),
    "GET /followups/<int:followup_id>": ("/followups/{followup}", None, DASH),
    # 400 without the form's CSRF token, before anyone is asked to sign in
    "POST /followups/<int:followup_id>/act": ("/followups/{followup}/act", None, PUBLIC),
    "GET /sites/<site_id>/entries": ("/sites/m-001/entries", None, DASH),
    "GET /sites/<site_id>/entries/<int:entry_id>/proofs/<int:proof_id>/photo": (
        "/sites/m-001/entries/{entry}/proofs/{entry_proof}/photo",
        None,
        DASH,
    ),
    "GET /api/v1/sites": ("/api/v1/sites", None, REGULATOR),
    "GET /api/v1/devices": ("/api/v1/devices", None, REGULATOR),
    "GET /api/v1/devices/<device_id>/uptime": ("/api/v1/devices/cam-1/uptime", None, REG_SCOPED),
    "GET /api/v1/devices/offline": ("/api/v1/devices/offline", None, REGULATOR),
    "GET /api/v1/uptime": ("/api/v1/uptime", None, REGULATOR),
    "GET /api/v1/uptime/worst": ("/api/v1/uptime/worst", None, REGULATOR),
    "GET /api/v1/uptime/targets": ("/api/v1/uptime/targets", None, REGULATOR),
    "GET /api/v1/plan/kpis": ("/api/v1/plan/kpis", None, REGULATOR),
    "GET /api/v1/alarms": ("/api/v1/alarms", None, REGULATOR),
    "GET /api/v1/alarms/<int:alarm_pk>": ("/api/v1/alarms/{alarm}", None, REG_SCOPED),
    "GET /api/v1/alerts": ("/api/v1/alerts", None, REGULATOR),
    "GET /api/v1/followups": ("/api/v1/followups", None, "1 o o o o o 3 3"),
    "GET /api/v1/followups/<int:followup_id>": (
        "/api/v1/followups/{followup}",
        None,
        "1 o o d o d 3 3",
    ),
    "GET /api/v1/results/export": ("/api/v1/results/export", None, "1 o o o o o 3 3"),
    "GET /api/v1/webhooks/deliveries": ("/api/v1/webhooks/deliveries", None, ADMIN),
    "GET /api/v1/epcis/events": ("/api/v1/epcis/events", None, "1 o o o 3 3 o o"),
    # a list in the caller's scope: a regulator of another district or an issuer sees its own
    "GET /api/v1/subjects": ("/api/v1/subjects", None, "1 o o o 3 3 o o"),
    "GET /api/v1/subjects/<subject_id>": ("/api/v1/subjects/s-001", None, "1 o o d 3 3 o d"),
    "GET /api/v1/certificates/<number>": ("/api/v1/certificates/{number}", None, "1 o o d o o o d"),
    "GET /api/v1/certificates/<number>/label.<fmt>": (
        "/api/v1/certificates/{number}/label.svg",
        None,
        "1 o o d 3 3 o d",
    ),
    "GET /api/v1/certificates/<number>/qr.<fmt>": (
        "/api/v1/certificates/{number}/qr.svg",
        None,
        "1 o o d 3 3 o d",
    ),
    "GET /api/v1/sites/<site_id>/entries/<int:entry_id>": (
        "/api/v1/sites/m-001/entries/{entry}",
        None,
        "1 o o d o d 3 3",
    ),
    # Who may cite what (§4b, §4c) and purchasers' proofs.
    "GET /api/v1/subjects/<subject_id>/sites": (
        "/api/v1/subjects/s-001/sites",
        None,
        "1 o o d 3 3 o d",
    ),
    "GET /api/v1/certificates/<number>/transfers": (
        "/api/v1/certificates/{number}/transfers",
        None,
        "1 o o d 3 3 o d",
    ),
    "GET /api/v1/proof-types": ("/api/v1/proof-types", None, "1 o o o o o o o"),
    "GET /api/v1/proofs/<int:proof_id>": ("/api/v1/proofs/{proof}", None, "1 o o d o o o d"),
    "GET /api/v1/proofs/<int:proof_id>/photo": (
        "/api/v1/proofs/{proof}/photo",
        None,
        "1 o o d o o o d",
    ),
    "GET /api/v1/sites/<site_id>/entries/<int:entry_id>/proofs/<int:proof_id>/photo": (
        "/api/v1/sites/m-001/entries/{entry}/proofs/{entry_proof}/photo",
        None,
        "1 o o d o d 3 3",
    ),
    # Writes.
    "POST /api/v1/subjects/<subject_id>/sites": (
        "/api/v1/subjects/s-001/sites",
        {"site": "m-001", "relation": "own"},
        "1 o o d 3 3 3 3",
    ),
    "DELETE /api/v1/subjects/<subject_id>/sites/<site_id>": (
        "/api/v1/subjects/s-001/sites/m-001",
        None,
        "1 o o d 3 3 3 3",
    ),
    "POST /api/v1/certificates/<number>/transfers": (
        "/api/v1/certificates/{number}/transfers",
        {"purchaser": "s-002"},
        "1 o 3 3 3 3 o d",
    ),
    "POST /api/v1/subjects/<subject_id>/proofs": (
        "/api/v1/subjects/s-001/proofs",
        {"kind": "test_report", "number": "R-{caller}"},
        "1 o 3 3 3 3 o d",
    ),
    "POST /api/v1/sites": ("/api/v1/sites", {"id": "m-{caller}", **SITE}, ADMIN),
    "POST /api/v1/devices": (
        "/api/v1/devices",
        {"id": "rt-{caller}", "site": "m-001", "kind": "rapid_test"},
        ADMIN,
    ),
    "POST /api/v1/devices/import": ("/api/v1/devices/import", {}, ADMIN),
    "POST /api/v1/plan/imports/<kind>": ("/api/v1/plan/imports/sampling", PLAN_ROWS, ADMIN),
    "POST /api/v1/devices/<device_id>/credentials": (
        "/api/v1/devices/cam-1/credentials",
        {},
        ADMIN,
    ),
    "PUT /api/v1/uptime/targets/<code>": ("/api/v1/uptime/targets/mclz", {}, ADMIN),
    "POST /api/v1/webhooks": ("/api/v1/webhooks", {}, ADMIN),
    "PUT /api/v1/catalogue/<code>": ("/api/v1/catalogue/role-x", {}, ADMIN),
    "PUT /api/v1/catalogue/<code>/lots/<lot>": (
        "/api/v1/catalogue/clenbuterol/lots/role-l",
        {"cutoff": 0.5, "unit": "µg/kg"},
        ADMIN,
    ),
    "POST /api/v1/results": ("/api/v1/results", RESULT, "1 o 3 3 o d 3 3"),
    "POST /api/v1/sites/<site_id>/entries": (
        "/api/v1/sites/m-001/entries",
        ENTRY,
        "1 o 3 3 o 3 3 3",
    ),
    "POST /api/v1/sites/<site_id>/entries/<int:entry_id>/visual-check": (
        "/api/v1/sites/m-001/entries/{entry}/visual-check",
        {"outcome": "test"},
        "1 o 3 3 o 3 3 3",
    ),
    "POST /api/v1/alarms/<int:alarm_pk>/status": (
        "/api/v1/alarms/{alarm}/status",
        {"status": "notified", "notice_no": "N1"},
        REG_SCOPED,
    ),
    "POST /api/v1/alerts/<int:alert_id>/read": ("/api/v1/alerts/{alert}/read", None, REG_SCOPED),
    "POST /api/v1/followups/<int:followup_id>/actions": (
        "/api/v1/followups/{followup}/actions",
        {"action": "stop_sale"},
        "1 o o d o d 3 3",
    ),
    "POST /api/v1/subjects": (
        "/api/v1/subjects",
        {**PRODUCER, "id": "s-{caller}", "credit_code": None, "district": "新华区"},
        "1 o o 3 3 3 3 3",
    ),
    "POST /api/v1/subjects/<subject_id>/keys": ("/api/v1/subjects/s-001/keys", None, REG_SCOPED),
    "POST /api/v1/certificates": ("/api/v1/certificates", CERT, "1 o 3 3 3 3 o d"),
    "POST /api/v1/certificates/<number>/revoke": (
        "/api/v1/certificates/{number}/revoke",
        {"reason": "错误"},
        "1 o 3 3 3 3 o d",
    ),
    "POST /api/v1/certificates/<number>/recall": (
        "/api/v1/certificates/{number}/recall",
        {"reason": "农残超标"},
        REG_SCOPED,
    ),
    "GET /api/v1/certificates/<number>/recall": (
        "/api/v1/certificates/{number}/recall",
        None,
        REG_SCOPED,
    ),
    "DELETE /api/v1/catalogue/<code>": ("/api/v1/catalogue/pesticide-ache", None, ADMIN),
}


def routes(app: Flask) -> set[str]:
    """Return every "METHOD rule" the app serves."""
    return {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


def seed(client: FlaskClient, sessions: sessionmaker[Session]) -> dict[str, str]:
    """Seed both districts and return the keys and the ids the URLs need."""
    seed_city(sessions)
    alarm_body = {"id": "a-1", "ts": at(100).isoformat(), "type": "rodent", "confidence": 0.9}
    feed(sessions, "k-1", "cam-1", "alarm", 100, json.dumps(alarm_body).encode())
    admin = key(sessions, "admin")
    with sessions.begin() as session:
        registry.add_site(session, SiteIn(id="m-003", kind="market", district="卫东区", name="x"))
    for subject_id, district in (("s-001", "新华区"), ("s-002", "卫东区")):
        body = {**PRODUCER, "id": subject_id, "district": district}
        body["credit_code"] = PRODUCER["credit_code"] if subject_id == "s-001" else None
        assert client.post("/api/v1/subjects", json=body, headers=auth(admin)).status_code == 201
    keys = {
        "admin": admin,
        "reg_a": key(sessions, "regulator", district="新华区"),
        "reg_b": key(sessions, "regulator", district="卫东区"),
        "lab_s": key(sessions, "lab", site_id="m-001"),
        "lab_o": key(sessions, "lab", site_id="m-002"),
        "iss_x": key(sessions, "issuer", subject_id="s-001"),
        "iss_o": key(sessions, "issuer", subject_id="s-002"),
    }
    cert = issue(client, keys["iss_x"])
    entry = client.post("/api/v1/sites/m-001/entries", json=ENTRY, headers=auth(keys["lab_s"]))
    assert entry.status_code == 201, entry.get_json()
    with sessions() as session:
        followup = session.scalar(select(Followup.id).where(Followup.site_id == "m-001"))
        assert followup, "seed_city's positive result at m-001 opens a follow-up"
        alert = FollowupAlert(
            followup_id=followup, site_id="m-001", district="新华区", kind="case_confirmed"
        )
        alert.title, alert.body, alert.created_at = "阳性", "复检确认阳性", utcnow()
        session.add(alert)
        session.commit()
        alert_id = alert.id
    alarm = client.get("/api/v1/alarms", headers=auth(admin)).get_json()[0]["id"]
    photo = (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16), "proof.png")
    proof = client.post(
        "/api/v1/subjects/s-001/proofs",
        data={"kind": "animal_quarantine", "number": "Q-1", "photo": photo},
        content_type="multipart/form-data",
        headers=auth(keys["iss_x"]),
    )
    assert proof.status_code == 201, proof.get_json()
    ids = {"code": cert["code"], "number": cert["number"], "entry": str(entry.get_json()["id"])}
    ids["proof"] = str(proof.get_json()["id"])
    ids["entry_proof"] = str(entry.get_json()["proofs"][0]["id"])
    return {**keys, **ids, "followup": str(followup), "alert": str(alert_id), "alarm": str(alarm)}


def outcome_ok(code: str, status: int, location: str) -> bool:
    """Tell whether a status matches the table's code."""
    return {
        "o": status not in (401, 403, 404) and status < 500,
        "p": status not in (401, 403) and status < 500,
        "1": status == 401,
        "3": status == 403,
        "d": status in (403, 404),
        "r": status == 302 and location.startswith("/login"),
    }[code]


def test_every_route_is_classified(app: Flask) -> None:
    assert routes(app) - set(TABLE) == set(), "classify new endpoints in TABLE"
    assert set(TABLE) - routes(app) == set(), "TABLE lists endpoints the app lacks"
    assert all(len(codes.split()) == len(CALLERS) for _, _, codes in TABLE.values())


def test_role_endpoint_table(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    pristine_catalogue: None,  # noqa: F811
) -> None:
    ids = seed(client, sessions)
    wrong = []
    for name, (url_template, body, codes) in TABLE.items():
        method = name.split()[0]
        expected = dict(zip(CALLERS, codes.split(), strict=True))
        for caller in ORDER:
            url = url_template.format(**ids)
            headers = auth(ids[caller]) if caller != "anon" else {}
            data = json.loads(json.dumps(body).replace("{caller}", caller.replace("_", "")))
            response = client.open(url, method=method, json=data, headers=headers)
            location = response.headers.get("Location", "")
            if not outcome_ok(expected[caller], response.status_code, location):
                wrong.append(f"{name} as {caller}: {response.status_code}, want {expected[caller]}")
    assert wrong == [], "\n".join(wrong)


def test_district_keys_list_their_own_district_only(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    pristine_catalogue: None,  # noqa: F811
) -> None:
    ids = seed(client, sessions)
    district_a = ("m-001", "k-1", "cam-1", "s-001", ids["number"])
    for url in (
        "/api/v1/sites",
        "/api/v1/devices",
        "/api/v1/epcis/events",
        "/api/v1/epcis/events?subject=s-001",
        "/api/v1/alarms",
        "/api/v1/alerts",
        "/api/v1/followups",
    ):
        text = client.get(url, headers=auth(ids["reg_b"])).get_data(as_text=True)
        assert [name for name in district_a if name in text] == [], url
        own = client.get(url, headers=auth(ids["reg_a"])).get_data(as_text=True)
        assert any(name in own for name in district_a), url
    refused = client.get("/api/v1/sites?district=新华区", headers=auth(ids["reg_b"]))
    assert refused.status_code == 403


A, B = "新华区", "卫东区"


def key_of(role: str, district: str | None = None, site: str | None = None) -> Principal:
    return Principal(1, role, site, district, None)


def test_one_district_rule() -> None:
    assert [in_scope(None, A), in_scope(A, A), in_scope(A, B)] == [True, True, False]
    check_district(key_of("regulator", A), A)
    check_district(key_of("regulator"), B)
    with pytest.raises(Problem) as refused:
        check_district(key_of("regulator", A), B)
    assert (refused.value.status, refused.value.title) == (403, "Forbidden")
    assert refused.value.detail == f"this key is scoped to {A}"
    hidden = Problem(404, "Not Found", "hidden")
    with pytest.raises(Problem) as caught:
        check_district(key_of("admin", A), B, hidden)
    assert caught.value is hidden
    assert own_district(key_of("regulator", A), B) == A
    assert own_district(key_of("regulator"), B) == B


def test_one_site_rule() -> None:
    check_site(key_of("lab", site="m-001"), "m-001", B)  # a lab key: its site, any district
    check_site(key_of("regulator", A), "m-9", None)  # unknown site: the caller answers 404
    check_site(key_of("admin", A), "m-9", B)
    with pytest.raises(Problem) as lab:
        check_site(key_of("lab", site="m-001"), "m-002", A)
    assert (lab.value.status, lab.value.title) == (403, "Forbidden")
    assert lab.value.detail == "this API key is scoped to site m-001"
    with pytest.raises(Problem) as regulator:
        check_site(key_of("regulator", A), "m-002", B)
    assert (regulator.value.status, regulator.value.title, regulator.value.detail) == (
        403,
        "Forbidden",
        f"this API key is scoped to {A}",
    )


def test_scoped_district_of_a_query(app: Flask) -> None:
    with app.test_request_context():
        g.principal = key_of("regulator", A)
        assert scoped_district(None) == A
        assert scoped_district(A) == A
        with pytest.raises(Problem):
            scoped_district(B)
        g.principal = key_of("regulator")
        assert scoped_district(B) == B
