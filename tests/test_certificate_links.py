"""Certificate links respect ownership: a lab cannot attach its test to anyone's certificate."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.trace.certificates.models import CertificateTest
from fangxin.trace.results.models import RapidTestResult
from tests.trace_helpers import auth, key, market, result, setup


def test_a_lab_elsewhere_cannot_attach_a_test_by_number(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    market(sessions)  # m-001 in 新华区, where the lot is checked in
    with sessions.begin() as session:
        registry.add_site(session, SiteIn(id="m-far", kind="market", district="卫东区", name="远"))
        registry.add_device(
            session, DeviceIn(id="rt-far", site="m-far", kind="rapid_test"), utcnow()
        )
    far_lab = key(sessions, "lab", site_id="m-far")
    _, cert = setup(client, admin_key)
    # a hostile lab guesses the sequential number and posts a positive "for" that certificate
    body = {
        **result("smear", 90.0, certificate=cert["number"]),
        "site": "m-far",
        "device": "rt-far",
    }
    response = client.post("/api/v1/results", json=body, headers=auth(far_lab))
    assert response.status_code == 201  # the result itself is the lab's own and is kept
    with sessions() as session:
        assert session.scalar(select(RapidTestResult.id)) is not None
        assert session.scalars(select(CertificateTest)).all() == []  # but never linked
    shown = client.get(f"/api/v1/certificates/{cert['number']}", headers=auth(admin_key))
    assert shown.get_json()["tests"] == []
    page = client.get(f"/c/{cert['code']}").get_data(as_text=True)
    assert "smear" not in page
