"""Queries per request of the hot public pages, counted on the app's engine (issue 17)."""

from __future__ import annotations

from dataclasses import replace

from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import utcnow
from fangxin.service.app import create_app
from fangxin.service.users import add_user
from fangxin.trace.certificates.models import Certificate
from tests.helpers import counted
from tests.pages_helpers import PASSWORD, login
from tests.trace_helpers import (
    PURCHASER,
    auth,
    hand_over,
    issue,
    issuer,
    key,
    market,
    post_results,
    result,
    setup,
    subject,
)

SCAN_QUERIES = 3  # issue 17 item 2


def rendering(settings: Settings, engine: Engine) -> FlaskClient:
    """A client whose app renders every scan and whose scan buffer is not due during the test."""
    return create_app(replace(settings, scan_cache_s=0, scan_flush_s=3600), engine).test_client()


def scan(client: FlaskClient, engine: Engine, code: str) -> tuple[str, list[str]]:
    """Open a scan page; return its html and the statements it ran."""
    with counted(engine) as statements:
        response = client.get(f"/c/{code}", headers={"User-Agent": "test"})
    assert response.status_code == 200
    return response.get_data(as_text=True), statements


def test_scan_page_of_a_tested_admitted_lot_takes_at_most_three_queries(
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    settings: Settings,
    engine: Engine,
) -> None:
    market(sessions)
    _, cert = setup(client, admin_key)
    entry = {"certificate": cert["code"], "product": "菠菜", "quantity": 5, "unit": "kg"}
    lab = key(sessions, "lab", site_id="m-001")
    assert client.post("/api/v1/sites/m-001/entries", json=entry, headers=auth(lab)).status_code
    post_results(sessions, [result("r-1", 12.5, certificate=cert["number"])])
    html, statements = scan(rendering(settings, engine), engine, cert["code"])
    # everything the page shows came from those queries
    for text in ("✔ 电子签名校验通过", "有机磷", "m-001市场", '校验<span class="negative">通过'):
        assert text in html, text
    assert len(statements) <= SCAN_QUERIES, statements


def test_scan_page_of_an_untested_lot_takes_one_query(
    client: FlaskClient, admin_key: str, settings: Settings, engine: Engine
) -> None:
    _, cert = setup(client, admin_key)
    html, statements = scan(rendering(settings, engine), engine, cert["code"])
    assert "暂无关联的快检记录" in html
    assert '校验<span class="negative">通过' in html
    assert len(statements) == 1, statements


def test_scan_page_of_a_reissued_lot_with_a_recalled_parent_takes_at_most_three_queries(
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    settings: Settings,
    engine: Engine,
) -> None:
    producer, grandparent = setup(client, admin_key)
    subject(client, admin_key, **PURCHASER)
    purchaser = issuer(client, admin_key, "p-001")
    hand_over(client, producer, grandparent["number"])
    parent = issue(
        client, purchaser, subject="p-001", quantity=20, upstream=[grandparent["number"]]
    )
    child = issue(client, purchaser, subject="p-001", quantity=5, upstream=[parent["number"]])
    client.post(
        f"/api/v1/certificates/{grandparent['number']}/recall",
        json={"reason": "复检确认农药残留超标"},
        headers=auth(key(sessions, "regulator")),
    )
    html, statements = scan(rendering(settings, engine), engine, child["code"])
    assert 'data-status="recalled"' in html
    assert f"上游批次 {grandparent['number']} 已召回" in html
    assert parent["number"] in html  # the whole chain
    assert grandparent["number"] in html
    assert '校验<span class="negative">通过' in html
    assert len(statements) <= SCAN_QUERIES, statements


def test_a_page_seen_before_costs_the_feeds_query_at_most_and_any_change_shows(
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    settings: Settings,
    engine: Engine,
) -> None:
    market(sessions)
    _, cert = setup(client, admin_key)
    # a page rendered is kept, but never served past the feed's ttl (here none) without a read
    app = create_app(replace(settings, scan_cache_s=1e-9, scan_flush_s=3600), engine)
    scanner = app.test_client()
    first, _ = scan(scanner, engine, cert["code"])
    again, checked = scan(scanner, engine, cert["code"])
    assert again == first
    assert len(checked) == 1, checked
    assert "page_changes" in checked[0]  # the feed's read, no render
    # another worker voids the lot: this process's cache was not told, the feed was
    with sessions.begin() as session:
        row = session.scalars(select(Certificate)).one()
        row.status, row.void_reason, row.voided_at = "voided", "产地填写错误", utcnow()
    voided, _ = scan(scanner, engine, cert["code"])
    assert 'data-status="voided"' in voided
    # a lab links a test to the lot: the page shows it on the next scan
    entry = {"certificate": cert["code"], "product": "菠菜", "quantity": 5, "unit": "kg"}
    lab = key(sessions, "lab", site_id="m-001")
    assert client.post("/api/v1/sites/m-001/entries", json=entry, headers=auth(lab)).status_code
    post_results(sessions, [result("r-1", 12.5, certificate=cert["number"])])
    tested, _ = scan(scanner, engine, cert["code"])
    assert "有机磷" in tested
    assert "m-001市场" in tested
    # a record altered in the database is verified again, not served from the cache
    with sessions.begin() as session:
        session.scalars(select(Certificate)).one().product = "菠菜（改）"
    tampered, _ = scan(scanner, engine, cert["code"])
    assert 'data-status="tampered"' in tampered


def test_one_lots_markets_and_tests_never_reach_another_lots_page(
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    settings: Settings,
    engine: Engine,
) -> None:
    secret, copied = setup(client, admin_key)
    other = issue(client, secret)
    app = create_app(replace(settings, scan_cache_s=1e-9, scan_flush_s=0), engine)
    scanner = app.test_client()
    scan(scanner, engine, other["code"])
    with sessions.begin() as session:
        add_user(session, "inspector", PASSWORD, "regulator")
    inspector = app.test_client()
    assert login(inspector, "inspector") == 302  # an inspector's scans name their market
    for n in range(1, 5):
        market(sessions, f"m-00{n}", f"rt-{n}")
        inspector.get(f"/c/{copied['code']}?m=m-00{n}", headers={"User-Agent": "test"})
    entry = {"certificate": copied["code"], "product": "菠菜", "quantity": 5, "unit": "kg"}
    lab = key(sessions, "lab", site_id="m-001")
    assert client.post("/api/v1/sites/m-001/entries", json=entry, headers=auth(lab)).status_code
    post_results(sessions, [result("r-1", 12.5, certificate=copied["number"])])
    flagged, _ = scan(inspector, engine, copied["code"])
    assert "4 个市场" in flagged
    html, statements = scan(scanner, engine, other["code"])
    assert 'data-flag="copied-code"' not in html
    assert "有机磷" not in html
    # the feed did not name it: served as kept (the other statement writes this scan)
    assert len([s for s in statements if s.startswith("SELECT")]) == 1, statements
