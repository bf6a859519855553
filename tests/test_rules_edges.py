"""Core rules pinned at their edges through the real doors: dedupe key, signed fields, scope."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.certificates.models import Certificate
from fangxin.trace.results.models import RapidTestResult
from tests.helpers import count, result
from tests.results_helpers import (  # noqa: F401 - fixtures
    RT,
    RT2,
    SITE,
    mqtt,
    post,
    posted,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)
from tests.test_roles import seed
from tests.trace_helpers import (
    PURCHASER,
    auth,
    hand_over,
    issue,
    issuer,
    key,
    link_site,
    market,
    post_results,
    subject,
)
from tests.trace_helpers import result as trace_result

pytestmark = pytest.mark.usefixtures("pristine_catalogue")


def stored_keys(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(RapidTestResult.device_id, RapidTestResult.result_id).order_by(
                RapidTestResult.device_id, RapidTestResult.result_id
            )
        )
        return [(d, r) for d, r in rows]


# --- dedupe: one result per (device, id), whichever door ---------------------------------------


def test_http_dedupes_per_device_and_id(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    first = post(client, keys.lab, [posted("r-1", 12.0), posted("r-1", 13.0, device=RT2)])
    assert first.status_code == 201
    assert [r["status"] for r in first.get_json()["results"]] == ["stored", "stored"]
    again = post(client, keys.lab, [posted("r-1", 12.0, device=RT2), posted("r-1", 12.0)])
    assert again.status_code == 200
    assert [r["status"] for r in again.get_json()["results"]] == ["duplicate", "duplicate"]
    assert stored_keys(sessions) == [(RT, "r-1"), (RT2, "r-1")]


def test_mqtt_dedupes_per_device_and_id(sessions: sessionmaker[Session]) -> None:
    setup_market(sessions)
    assert mqtt(sessions, result("r-1", 12.0)).results == 1
    assert mqtt(sessions, result("r-1", 13.0), device=RT2).results == 1
    mqtt(sessions, result("r-1", 12.0), result("r-1", 12.0))
    mqtt(sessions, result("r-1", 13.0), device=RT2)
    assert stored_keys(sessions) == [(RT, "r-1"), (RT2, "r-1")]


def test_dedupe_across_doors_keeps_the_device(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    mqtt(sessions, result("r-9", 12.0))
    # the same id from the other instrument over HTTP is a new result, not a duplicate
    response = post(client, keys.lab, posted("r-9", 12.0, device=RT2))
    assert response.status_code == 201
    assert response.get_json()["results"][0]["status"] == "stored"
    assert post(client, keys.lab, posted("r-9", 12.0)).get_json()["duplicate"] == 1
    assert stored_keys(sessions) == [(RT, "r-9"), (RT2, "r-9")]


# --- signatures: every signed field, and exactly those -------------------------------------------

GTIN = "09520123456788"
SIGNED_KEYS = {
    "v",
    "number",
    "code",
    "template",
    "template_version",
    "subject",
    "product",
    "quantity",
    "unit",
    "origin",
    "issued_at",
    "commitment",
    "basis",
    "evidence",
    "upstream",
    "gtin",
    "lot",
}


def full_certificate(client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]) -> Any:
    """Issue a certificate with every optional signed field set: GTIN, lot, test evidence."""
    market(sessions)
    post_results(sessions, [trace_result("neg-1", 10.0), trace_result("neg-2", 11.0)])
    subject(client, admin_key, gtin_prefix="952012345")
    link_site(client, admin_key, "s-001", "m-001")  # the test is the subject's own
    return issue(
        client,
        issuer(client, admin_key, "s-001"),
        gtin=GTIN,
        lot="L2611",
        basis=["self_test"],
        test_result={"device": "rt-1", "id": "neg-1"},
    )


def test_the_signed_content_is_exactly_these_fields(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    cert = full_certificate(client, admin_key, sessions)
    signed = cert["signed"]
    assert set(signed) == SIGNED_KEYS
    assert set(signed["subject"]) == {"id", "name", "contact"}
    assert (signed["gtin"], signed["lot"]) == (GTIN, "L2611")
    assert signed["evidence"] == {"device": "rt-1", "result": "neg-1"}
    assert signed["v"] == 1
    # the issue time as signed: UTC, whole seconds, a fixed text form a verifier can rebuild
    issued = dt.datetime.fromisoformat(cert["issued_at"]).astimezone(dt.UTC)
    assert signed["issued_at"] == issued.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", signed["issued_at"])
    assert cert["signature"]["verified"] is True
    # a lot drawn from it signs the link: upstream number and quantity under these names
    subject(client, admin_key, **PURCHASER)
    hand_over(client, issuer(client, admin_key, "s-001"), cert["number"])
    child = issue(
        client,
        issuer(client, admin_key, "p-001"),
        subject="p-001",
        quantity=10,
        upstream=[cert["number"]],
    )
    assert child["signed"]["upstream"] == [{"number": cert["number"], "quantity": "10"}]


def test_the_signed_issue_time_is_utc_whatever_the_hosts_zone(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    """A server run with TZ=Asia/Shanghai signs the same UTC text a verifier rebuilds."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    try:
        cert = full_certificate(client, admin_key, sessions)
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
    issued = dt.datetime.fromisoformat(cert["issued_at"]).astimezone(dt.UTC)
    assert cert["signed"]["issued_at"] == issued.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("gtin", "09520123456795"),
        ("lot", "L2612"),
        ("number", "HGZ20990101-000001"),
        ("code", "AAAAAAAAAAAAAAAA"),
        ("template", "purchaser"),
        ("template_version", "2019"),
        ("subject_name", "冒名合作社"),
        ("contact", "0375-0000000"),
        ("product", "韭菜"),
        ("quantity_milli", 50_001),
        ("unit", "斤"),
        ("origin", "山东省寿光市"),
        ("issued_at", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        ("commitment", "不承诺"),
        ("basis", ["quality_control"]),
    ],
)
def test_tampering_with_any_signed_column_is_caught(
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    column: str,
    value: object,
) -> None:
    cert = full_certificate(client, admin_key, sessions)
    with sessions.begin() as session:
        session.execute(
            update(Certificate).where(Certificate.number == cert["number"]).values({column: value})
        )
    number = value if column == "number" else cert["number"]
    shown = client.get(f"/api/v1/certificates/{number}", headers=auth(admin_key)).get_json()
    assert shown["signature"]["verified"] is False, column
    assert shown["signature"]["problem"] == "signature does not match the record"
    code = value if column == "code" else cert["code"]
    page = client.get(f"/c/{code}").get_data(as_text=True)
    assert 'data-status="tampered"' in page


def test_swapping_the_evidence_is_caught(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    cert = full_certificate(client, admin_key, sessions)
    with sessions.begin() as session:
        other = session.scalar(
            select(RapidTestResult.id).where(RapidTestResult.result_id == "neg-2")
        )
        session.execute(
            update(Certificate)
            .where(Certificate.number == cert["number"])
            .values(test_result_id=other)
        )
    shown = client.get(f"/api/v1/certificates/{cert['number']}", headers=auth(admin_key))
    assert shown.get_json()["signature"]["verified"] is False


# --- scope: a district key never sees another district, whatever the query says ---------------

# Every regulator list and export, asked for district A's things by a key of district B.
FOREIGN_QUERIES = [
    "/api/v1/sites?district=新华区",
    "/api/v1/devices?site=k-1",
    "/api/v1/devices?district=新华区",
    "/api/v1/devices/offline?district=新华区",
    "/api/v1/devices/offline?district=新华区&kind=camera",
    "/api/v1/uptime?district=新华区",
    "/api/v1/uptime?district=新华区&format=csv",
    "/api/v1/uptime/worst?district=新华区",
    "/api/v1/alarms?district=新华区",
    "/api/v1/alarms?site=k-1",
    "/api/v1/alerts?district=新华区",
    "/api/v1/alerts?site=m-001",
    "/api/v1/followups?district=新华区",
    "/api/v1/followups?site=m-001",
    "/api/v1/followups?district=新华区&site=m-001&state=open",
    "/api/v1/results/export?district=新华区",
    "/api/v1/results/export?site=m-001",
    "/api/v1/results/export?site=m-001&format=xlsx",
    "/api/v1/subjects?district=新华区",
    "/api/v1/subjects?q=郏县",
    "/api/v1/epcis/events?subject=s-001",
    "/api/v1/epcis/events?certificate={number}",
]


def test_every_list_refuses_another_district_through_its_query(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    ids = seed(client, sessions)
    own = ("m-001", "k-1", "cam-1", "s-001", "rt-1", ids["number"], "r-1")
    leaks = []
    for template in FOREIGN_QUERIES:
        url = template.format(**ids)
        response = client.get(quote(url, safe="/?=&"), headers=auth(ids["reg_b"]))
        if response.status_code == 403:
            body = response.get_json()
            assert body["title"] == "Forbidden", url
            assert "scoped to 卫东区" in body["detail"], url
            continue
        assert response.status_code == 200, (url, response.status_code)
        text = response.get_data(as_text=True)
        leaks += [f"{url}: {name}" for name in own if name in text]
    assert leaks == []
    # the same queries by district A's key do see its own things: the test data is there
    for url in ("/api/v1/alerts?district=新华区", "/api/v1/followups?site=m-001"):
        text = client.get(quote(url, safe="/?=&"), headers=auth(ids["reg_a"])).get_data(True)
        assert "m-001" in text, url


def test_alerts_and_followups_ignore_a_foreign_district(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    ids = seed(client, sessions)
    for path in ("/api/v1/alerts", "/api/v1/followups"):
        for query in ("", "?district=新华区", "?district=", "?district=卫东区"):
            url = quote(path + query, safe="/?=&")
            body = client.get(url, headers=auth(ids["reg_b"])).get_json()
            assert body == [], url
    lab = key(sessions, "lab", site_id="m-002")
    body = client.get("/api/v1/followups?site=m-001", headers=auth(lab)).get_json()
    assert body == []
    assert count(sessions, RapidTestResult, RapidTestResult.site_id == "m-001") == 2
