"""Edges of rule time over HTTP, reached through the app's injected clock: exact, never near."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.service.models import AuditEntry
from fangxin.service.users import add_user
from tests.conftest import MovableClock
from tests.helpers import CST
from tests.pages_helpers import PASSWORD, login
from tests.results_helpers import auth, post, posted, setup_market
from tests.test_followup import followup_of
from tests.trace_helpers import issue, key, setup

MIDNIGHT = dt.datetime(2026, 12, 1, tzinfo=CST)  # local midnight: 16:00 UTC the day before
NEW_YEAR = dt.datetime(2027, 1, 1, tzinfo=CST)  # still 2026 in UTC for eight hours


def at(value: str) -> dt.datetime:
    """Parse a datetime the API returned."""
    return dt.datetime.fromisoformat(value)


def test_certificate_numbers_restart_at_local_midnight(
    clock: MovableClock, client: FlaskClient, admin_key: str
) -> None:
    clock.set(MIDNIGHT - dt.timedelta(seconds=1))
    secret, first = setup(client, admin_key)
    second = issue(client, secret)
    clock.set(MIDNIGHT)
    third = issue(client, secret)
    assert [c["number"] for c in (first, second, third)] == [
        "HGZ20261130-000001",
        "HGZ20261130-000002",
        "HGZ20261201-000001",
    ]
    assert at(first["issued_at"]) == MIDNIGHT - dt.timedelta(seconds=1)
    assert at(third["issued_at"]) == MIDNIGHT


def test_voided_and_recalled_at_the_clock(
    clock: MovableClock, client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    clock.set(MIDNIGHT)
    secret, cert = setup(client, admin_key)
    voided_at = MIDNIGHT + dt.timedelta(hours=1, microseconds=7)
    clock.set(voided_at)
    url = f"/api/v1/certificates/{cert['number']}/revoke"
    voided = client.post(url, json={"reason": "数量填写错误"}, headers=auth(secret))
    assert at(voided.get_json()["voided_at"]) == voided_at
    other = issue(client, secret)
    recalled_at = voided_at + dt.timedelta(minutes=5)
    clock.set(recalled_at)
    regulator = key(sessions, "regulator", district="郏县")
    url = f"/api/v1/certificates/{other['number']}/recall"
    recalled = client.post(url, json={"reason": "抽检不合格：毒死蜱超标"}, headers=auth(regulator))
    assert recalled.status_code == 201
    assert at(recalled.get_json()["recalled_at"]) == recalled_at


def test_kpi_year_is_the_local_year(
    clock: MovableClock, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        add_user(session, "admin", PASSWORD, "admin")
    regulator = key(sessions, "regulator", district="新华区")
    assert login(client, "admin") == 302
    clock.set(NEW_YEAR - dt.timedelta(seconds=1))
    assert client.get("/kpi?year=2027").status_code == 404
    assert client.get("/kpi?year=2026").status_code == 200
    kpis = client.get("/api/v1/plan/kpis", headers=auth(regulator))
    assert kpis.get_json()["year"] == 2026
    clock.set(NEW_YEAR)  # 2026-12-31T16:00Z: the UTC year would still say 2026
    page = client.get("/kpi")
    assert page.status_code == 200
    assert '<option value="2027"' in page.get_data(as_text=True)
    assert client.get("/kpi?year=2027").status_code == 200
    kpis = client.get("/api/v1/plan/kpis", headers=auth(regulator))
    assert kpis.get_json()["year"] == 2027


def test_recheck_deadline_is_four_hours_after_the_post(
    clock: MovableClock, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    posted_at = MIDNIGHT + dt.timedelta(minutes=3, microseconds=250)
    clock.set(posted_at)
    tested = (posted_at - dt.timedelta(minutes=1)).isoformat(timespec="milliseconds")
    body = posted("g-1", 72.0, source="regulator", ts=tested)
    assert post(client, keys.lab, body).status_code == 201
    followup = followup_of(sessions, "g-1")
    assert followup.opened_at == posted_at
    assert followup.recheck_deadline == posted_at + dt.timedelta(hours=4)


def test_refusals_are_counted_per_minute_of_the_clock(
    clock: MovableClock, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    minute = MIDNIGHT + dt.timedelta(minutes=10)
    for offset in (0.0, 59.999999, 60.0):
        clock.set(minute + dt.timedelta(seconds=offset))
        assert client.post("/api/v1/sites", json={}).status_code == 401
    with sessions() as session:
        rows = session.execute(
            select(AuditEntry.at, AuditEntry.attempts).order_by(AuditEntry.id)
        ).all()
    assert [tuple(r) for r in rows] == [(minute, 2), (minute + dt.timedelta(minutes=1), 1)]
