"""The consumer scan page: each status, what it shows, scan logging and copied-code flags."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import utcnow
from fangxin.service.app import create_app
from fangxin.service.pages.scan import flush_scans, page_cache
from fangxin.service.users import add_user
from fangxin.trace.certificates.models import Certificate, CertificateScan
from fangxin.trace.certificates.scans import plausible_visitors, scan_stats
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

UA = {"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0"}


@pytest.fixture
def uncached(settings: Settings, engine: Engine) -> FlaskClient:
    """A client whose app renders every scan and writes every scan at once."""
    app = create_app(replace(settings, scan_cache_s=0, scan_flush_s=0), engine)
    return app.test_client()


def page(client: FlaskClient, code: str, **headers: str) -> tuple[int, str]:
    response = client.get(f"/c/{code}", headers={**UA, **headers})
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, response.get_data(as_text=True)


def test_genuine_page_shows_fields_subject_basis_and_tests(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    market(sessions)
    secret, cert = setup(client, admin_key)
    # a lab's test is linked once the lot came through its market's entry check (issue 11)
    entry = {"certificate": cert["code"], "product": "菠菜", "quantity": 5, "unit": "kg"}
    lab = key(sessions, "lab", site_id="m-001")
    client.post("/api/v1/sites/m-001/entries", json=entry, headers=auth(lab))
    post_results(sessions, [result("r-1", 12.5, certificate=cert["number"])])
    status, html = page(client, cert["code"])
    assert status == 200
    assert '<html lang="zh-CN">' in html
    assert 'name="viewport"' in html
    assert html.index('data-status="genuine"') < html.index("产品名称")  # the banner comes first
    assert "真实有效" not in html  # a signature proves the record, not the produce
    for text in (
        "✔ 电子签名校验通过",
        "开具后未被改动",
        "承诺依据：",
        "由承诺主体（郏县绿源蔬菜合作社）通过本平台开具",
        "菠菜",
        "50 kg",
        "河南省平顶山市郏县",
        "郏县绿源蔬菜合作社",
        "0375-1234567",
        "生产者",
        "☑</span>质量安全控制符合要求",
        "☐</span>自行检测合格",
        "我承诺生产销售的食用农产品",
        "阴性",
        "有机磷",
        "m-001市场",
        '校验<span class="negative">通过',
    ):
        assert text in html, text
    assert cert["number"] in html
    # Codes are case-insensitive: a hand-typed lower-case code still finds the certificate.
    assert page(client, cert["code"].lower())[0] == 200


def test_voided_page_says_so(client: FlaskClient, admin_key: str) -> None:
    secret, cert = setup(client, admin_key)
    client.post(
        f"/api/v1/certificates/{cert['number']}/revoke",
        json={"reason": "产地填写错误"},
        headers=auth(secret),
    )
    status, html = page(client, cert["code"])
    assert status == 200
    assert 'data-status="voided"' in html
    assert "此合格证已作废" in html
    assert "产地填写错误" in html
    assert "✔ 电子签名校验通过" not in html


def test_recalled_page_warns_here_and_downstream(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    producer, parent = setup(client, admin_key)
    subject(client, admin_key, **PURCHASER)
    hand_over(client, producer, parent["number"])
    child = issue(
        client,
        issuer(client, admin_key, "p-001"),
        subject="p-001",
        quantity=10,
        upstream=[parent["number"]],
    )
    regulator = key(sessions, "regulator")
    client.post(
        f"/api/v1/certificates/{parent['number']}/recall",
        json={"reason": "复检确认农药残留超标"},
        headers=auth(regulator),
    )
    _, html = page(client, parent["code"])
    assert 'data-status="recalled"' in html
    assert "召回警示" in html
    assert "本批次已召回" in html
    assert "复检确认农药残留超标" in html
    _, downstream = page(client, child["code"])
    assert 'data-status="recalled"' in downstream
    assert f"上游批次 {parent['number']} 已召回" in downstream
    assert parent["number"] in downstream  # the upstream chain
    assert "收购者" in downstream


def test_unknown_code_is_a_friendly_404(client: FlaskClient) -> None:
    for code in ("AAAAAAAAAAAAAAAA", "not-a-code", "x" * 300):
        status, html = page(client, code)
        assert status == 404
        assert 'data-status="not_found"' in html
        assert "本平台没有此合格证的记录" in html
        assert "12315" in html


def test_scans_are_logged_without_personal_data(
    settings: Settings, engine: Engine, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    # A flush window longer than the test: the first check must not depend on the machine's speed.
    client = create_app(replace(settings, scan_flush_s=3600), engine).test_client()
    market(sessions)
    _, cert = setup(client, admin_key)
    for _ in range(3):
        client.get(
            f"/c/{cert['code']}?m=m-001", headers=UA, environ_base={"REMOTE_ADDR": "203.0.113.7"}
        )
    client.get(
        f"/c/{cert['code']}?m=nowhere", headers=UA, environ_base={"REMOTE_ADDR": "198.51.100.9"}
    )
    with sessions() as session:  # counted in memory, written in batches
        assert session.scalars(select(CertificateScan)).all() == []
    with client.application.app_context():
        flush_scans(force=True)
    with sessions() as session:
        rows = session.scalars(select(CertificateScan)).all()
        # anonymous scans name no market: ?m= is the caller's word (§5)
        assert sorted((r.site_id, r.count, r.signed_in) for r in rows) == [
            ("", 1, False),
            ("", 3, False),
        ]
        for row in rows:
            stored = " ".join(str(v) for v in (row.visitor, row.site_id, row.day))
            assert "203.0.113" not in stored
            assert "198.51.100" not in stored
            assert "iPhone" not in stored
            assert len(row.visitor) == 16
        cert_row = session.scalars(select(Certificate)).one()
        stats = scan_stats(session, cert_row)
    assert (stats.scans, stats.anonymous_visitors, stats.visitors, stats.markets) == (4, 2, 0, 0)
    assert not stats.copy_suspected


def test_far_too_many_scans_flag_a_copied_code(
    uncached: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    client = uncached
    secret, cert = setup(client, admin_key)
    with sessions.begin() as session:
        row = session.scalars(select(Certificate)).one()
        limit = plausible_visitors(row)
        now = utcnow()
        today = now.date()
        session.add_all(
            CertificateScan(
                certificate_id=row.id,
                day=today,
                visitor=f"{i:016x}",
                site_id="",
                signed_in=True,
                count=1,
                first_at=now,
                last_at=now,
            )
            for i in range(limit)
        )
    assert 'data-flag="copied-code"' not in page(client, cert["code"])[1]  # anonymous
    with sessions.begin() as session:
        add_user(session, "inspector", PASSWORD, "regulator")
    assert login(client, "inspector") == 302
    _, html = page(client, cert["code"])
    assert 'data-flag="copied-code"' in html
    assert "可能被复制" in html


def test_many_markets_flag_a_copied_code(
    uncached: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    client = uncached
    _, cert = setup(client, admin_key)
    with sessions.begin() as session:
        add_user(session, "inspector", PASSWORD, "regulator")
    assert login(client, "inspector") == 302  # an inspector's scans name their market
    for n in range(1, 5):
        market(sessions, f"m-00{n}", f"rt-{n}")
        client.get(f"/c/{cert['code']}?m=m-00{n}", headers=UA)
    _, html = page(client, cert["code"])
    assert 'data-flag="copied-code"' in html
    assert "4 个市场" in html


def test_anonymous_scans_cannot_make_a_genuine_code_look_copied(
    uncached: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    """§5: a few anonymous requests with made-up ?m= and X-Forwarded-For mark a code copied."""
    client = uncached
    _, cert = setup(client, admin_key)
    for n in range(1, 6):
        market(sessions, f"m-00{n}", f"rt-{n}")
    for n in range(10):
        client.get(
            f"/c/{cert['code']}?m=m-00{n % 5 + 1}",
            headers={**UA, "X-Forwarded-For": f"198.51.100.{n}"},
        )
    _, html = page(client, cert["code"])
    assert 'data-flag="copied-code"' not in html
    with sessions() as session:
        rows = session.scalars(select(CertificateScan)).all()
        assert {(r.site_id, r.signed_in) for r in rows} == {("", False)}  # no market, no evidence
        stats = scan_stats(session, session.scalars(select(Certificate)).one())
    assert (stats.visitors, stats.markets, stats.copy_suspected) == (0, 0, False)
    # X-Forwarded-For from an untrusted peer is not the client: one visitor, not ten
    assert stats.anonymous_visitors == 1
    # and the market's entry check of the genuine lot is admitted, not pushed to pending_test
    lab = key(sessions, "lab", site_id="m-001")
    entry = {"certificate": cert["code"], "product": "菠菜", "quantity": 5, "unit": "kg"}
    checked = client.post("/api/v1/sites/m-001/entries", json=entry, headers=auth(lab))
    assert checked.status_code == 201
    assert (checked.get_json()["status"], checked.get_json()["flags"]) == ("admitted", [])


def test_hot_pages_are_cached_until_the_status_changes(
    settings: Settings, engine: Engine, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    # Pages kept for an hour: only the status change may drop them, not the clock.
    client = create_app(replace(settings, scan_cache_s=3600), engine).test_client()
    secret, cert = setup(client, admin_key)
    assert 'data-status="genuine"' in page(client, cert["code"])[1]
    with client.application.app_context():
        cached = page_cache().get(cert["code"])
    assert cached is not None
    assert 'data-status="genuine"' in cached[1]
    client.post(
        f"/api/v1/certificates/{cert['number']}/revoke",
        json={"reason": "重复开具"},
        headers=auth(secret),
    )
    assert 'data-status="voided"' in page(client, cert["code"])[1]  # no stale page after a change
    regulator = key(sessions, "regulator")
    client.post(
        f"/api/v1/certificates/{cert['number']}/recall",
        json={"reason": "召回测试"},
        headers=auth(regulator),
    )
    assert 'data-status="recalled"' in page(client, cert["code"])[1]
    with client.application.app_context():
        flush_scans(force=True)
    with sessions() as session:
        assert sum(r.count for r in session.scalars(select(CertificateScan))) == 3
