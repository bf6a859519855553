"""The HTTP door: registry endpoints, auth, problem+json, site status, health, OpenAPI."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from fangxin.ingest.batch import RawMessage
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink
from fangxin.service.auth import create_key
from tests.conftest import MovableClock
from tests.helpers import CST, dumps, result, status

SITE = {"id": "m-001", "kind": "market", "district": "新华区", "name": "光明路农贸市场"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def setup_site(client: FlaskClient, key: str) -> dict[str, Any]:
    assert client.post("/api/v1/sites", json=SITE, headers=auth(key)).status_code == 201
    response = client.post(
        "/api/v1/devices",
        json={"id": "rt-1", "site": "m-001", "kind": "rapid_test"},
        headers=auth(key),
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.get_json()
    return body


def test_register_site_and_device(client: FlaskClient, admin_key: str) -> None:
    device = setup_site(client, admin_key)
    assert device["mqtt_username"] == "rt-1"
    assert len(device["mqtt_password"]) >= 20
    assert device["online"] is False
    listed = client.get("/api/v1/devices?site=m-001", headers=auth(admin_key)).get_json()
    assert [d["id"] for d in listed] == ["rt-1"]
    assert "mqtt_password" not in listed[0]


def test_missing_and_bad_keys(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    response = client.post("/api/v1/sites", json=SITE)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert client.post("/api/v1/sites", json=SITE, headers=auth("fx_nope_nope")).status_code == 401
    with sessions() as session:
        regulator = create_key(session, "regulator", district="新华区")
        session.commit()
    forbidden = client.post("/api/v1/sites", json=SITE, headers=auth(regulator))
    assert forbidden.status_code == 403
    assert forbidden.get_json()["title"] == "Forbidden"
    assert client.get("/api/v1/sites", headers=auth(regulator)).status_code == 200


def test_validation_and_conflict_are_problems(client: FlaskClient, admin_key: str) -> None:
    bad = client.post("/api/v1/sites", json={**SITE, "kind": "mall"}, headers=auth(admin_key))
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "kind"
    not_json = client.post("/api/v1/sites", data="x", headers=auth(admin_key))
    assert not_json.status_code == 400
    setup_site(client, admin_key)
    again = client.post("/api/v1/sites", json=SITE, headers=auth(admin_key))
    assert again.status_code == 409
    assert "already registered" in again.get_json()["detail"]
    orphan = client.post(
        "/api/v1/devices",
        json={"id": "d", "site": "nowhere", "kind": "camera"},
        headers=auth(admin_key),
    )
    assert orphan.status_code == 404


def test_unknown_route_is_problem(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_status_counts_today_by_verdict(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    setup_site(client, admin_key)
    now = dt.datetime.now(dt.UTC)
    clock.set(now)  # the status's "today" is the day of these results, even at midnight
    tested = now.astimezone(CST).isoformat()
    yesterday = (now.astimezone(CST) - dt.timedelta(days=1)).isoformat()
    topic = "fangxin/v1/m-001/rt-1/"
    messages = [
        RawMessage(topic + "result", dumps(result("a", 10.0, ts=tested)), now),
        RawMessage(topic + "result", dumps(result("b", 45.0, ts=tested)), now),
        RawMessage(topic + "result", dumps(result("c", 70.0, ts=tested)), now),
        RawMessage(topic + "result", dumps(result("d", 71.0, ts=tested)), now),
        RawMessage(topic + "result", dumps(result("old", 80.0, ts=yesterday)), now),
        RawMessage(topic + "status", dumps(status()), now),
    ]
    with sessions.begin() as session:
        Pipeline(SqlSink()).process(session, messages)
    body = client.get("/api/v1/sites/m-001/status").get_json()
    assert body["results_today"] == {"negative": 1, "suspect": 1, "positive": 2, "total": 4}
    assert body["devices"] == {"known": 1, "online": 1}
    assert body["date"] == now.astimezone(CST).date().isoformat()
    assert client.get("/api/v1/sites/nowhere/status").status_code == 404


def test_health_ready_metrics_openapi(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["database"] == "ok"
    assert "fangxin_dead_letters 0" in client.get("/metrics").get_data(as_text=True)
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/sites/{site_id}/status" in spec["paths"]
    assert "DeviceIn" in spec["components"]["schemas"]


@pytest.mark.parametrize("broker", ["mqtt://127.0.0.1:1"])
def test_ready_reports_broker_down(client: FlaskClient, broker: str) -> None:
    from fangxin.service.context import state

    with client.application.app_context():
        app_state = state()
        from dataclasses import replace

        app_state.settings = replace(app_state.settings, mqtt_url=broker)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "unreachable" in response.get_json()["checks"]["broker"]
