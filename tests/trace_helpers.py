"""Helpers for 合格证 tests: sites, subjects, issuer keys, certificates, rapid-test results."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.ingest.batch import RawMessage
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink
from fangxin.service.auth import create_key
from fangxin.trace.certificates.credit_code import credit_check_char
from tests.helpers import CST, dumps

CREDIT_BODY = "93410425MA47XW01K"
CREDIT_CODE = CREDIT_BODY + credit_check_char(CREDIT_BODY)
PRODUCER = {
    "id": "s-001",
    "kind": "producer",
    "category": "cooperative",
    "name": "郏县绿源蔬菜合作社",
    "credit_code": CREDIT_CODE,
    "contact": "0375-1234567",
    "district": "郏县",
    "gtin_prefix": None,
}
PURCHASER = {
    "id": "p-001",
    "kind": "purchaser",
    "name": "平顶山鲜达农产品收购站",
    "contact": "0375-7654321",
    "district": "新华区",
}
CERT = {
    "subject": "s-001",
    "product": "菠菜",
    "quantity": 50,
    "unit": "kg",
    "origin": "河南省平顶山市郏县",
    "basis": ["quality_control"],
}


def auth(key: str) -> dict[str, str]:
    """Return the Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}


def key(sessions: sessionmaker[Session], role: str, **scope: Any) -> str:
    """Create an API key of a role and scope."""
    with sessions() as session:
        secret = create_key(session, role, **scope)
        session.commit()
    return secret


def market(sessions: sessionmaker[Session], site_id: str = "m-001", device: str = "rt-1") -> None:
    """Register a market with one rapid-test device."""
    with sessions() as session:
        registry.add_site(
            session, SiteIn(id=site_id, kind="market", district="新华区", name=f"{site_id}市场")
        )
        registry.add_device(session, DeviceIn(id=device, site=site_id, kind="rapid_test"), utcnow())
        session.commit()


def subject(client: FlaskClient, admin: str, **overrides: Any) -> dict[str, Any]:
    """Register a subject (a producer unless overridden) and return it."""
    response = client.post("/api/v1/subjects", json={**PRODUCER, **overrides}, headers=auth(admin))
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def issuer(client: FlaskClient, admin: str, subject_id: str) -> str:
    """Return a fresh issuer key scoped to the subject."""
    response = client.post(f"/api/v1/subjects/{subject_id}/keys", headers=auth(admin))
    assert response.status_code == 201
    secret: str = response.get_json()["key"]
    return secret


def issue(client: FlaskClient, key_: str, **overrides: Any) -> dict[str, Any]:
    """Issue a certificate (菠菜 50 kg of s-001 unless overridden) and return it."""
    response = client.post("/api/v1/certificates", json={**CERT, **overrides}, headers=auth(key_))
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def setup(client: FlaskClient, admin: str) -> tuple[str, dict[str, Any]]:
    """Register the producer, return its issuer key and one issued certificate."""
    subject(client, admin)
    secret = issuer(client, admin, "s-001")
    return secret, issue(client, secret)


def post_results(
    sessions: sessionmaker[Session],
    results: list[dict[str, Any]],
    site: str = "m-001",
    device: str = "rt-1",
) -> None:
    """Ingest rapid-test results through the real pipeline (entry checks included)."""
    topic = f"fangxin/v1/{site}/{device}/result"
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as session:
        Pipeline(SqlSink()).process(session, [RawMessage(topic, dumps(r), now) for r in results])


def result(
    rid: str, value: float, sample: str = "菠菜", certificate: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Build an enzyme-inhibition result (>= 50 % positive, 40-50 % suspect)."""
    body: dict[str, Any] = {
        "id": rid,
        "ts": dt.datetime.now(CST).isoformat(timespec="milliseconds"),
        "item": "pesticide-ache",
        "value": value,
        "unit": "%",
        "sample": {"name": sample, "category": "蔬菜"},
    }
    if certificate is not None:
        body["sample"]["certificate"] = certificate
    body.update(extra)
    return body


def link_site(
    client: FlaskClient, admin: str, subject_id: str, site: str, relation: str = "own"
) -> None:
    """Link a site to a subject: its own, or a lab it commissioned."""
    response = client.post(
        f"/api/v1/subjects/{subject_id}/sites",
        json={"site": site, "relation": relation},
        headers=auth(admin),
    )
    assert response.status_code == 201, response.get_json()


def hand_over(client: FlaskClient, key_: str, number: str, purchaser: str = "p-001") -> None:
    """Record, as the upstream issuer, that a lot went to a purchaser."""
    response = client.post(
        f"/api/v1/certificates/{number}/transfers",
        json={"purchaser": purchaser},
        headers=auth(key_),
    )
    assert response.status_code == 201, response.get_json()
