"""§7: limits keyed on who was authenticated, per-account login backoff, counted 401s."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.service.app import create_app
from fangxin.service.models import AuditEntry
from fangxin.service.users import add_user
from fangxin.trace.results.models import RapidTestResult
from tests.pages_helpers import PASSWORD, TOKEN, login
from tests.trace_helpers import auth, key, market, result

LAB_ADDR, ATTACKER = "192.0.2.10", "203.0.113.66"


def app_with(settings: Settings, engine: Engine, **limits: Any) -> Flask:
    """Return an app with test-sized limits."""
    return create_app(replace(settings, **limits), engine)


def send(client: FlaskClient, secret: str, rid: str, addr: str) -> Any:
    body = {**result(rid, 10.0), "site": "m-001", "device": "rt-1"}
    return client.post(
        "/api/v1/results", json=body, headers=auth(secret), environ_base={"REMOTE_ADDR": addr}
    )


def stored(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RapidTestResult)) or 0)


def test_guessed_keys_spend_the_senders_budget_not_the_labs(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    market(sessions)
    client = app_with(settings, engine, ratelimit_results="2/minute").test_client()
    lab = key(sessions, "lab", site_id="m-001")
    prefix = lab[3:15]
    # made-up prefixes, each new, used to be a fresh budget each: now one address, one budget
    made_up = [send(client, f"fx_{n:012x}_nope", f"x{n}", ATTACKER) for n in range(3)]
    assert [r.status_code for r in made_up] == [401, 401, 429]
    refused = made_up[-1]
    assert refused.mimetype == "application/problem+json"
    assert "rate limit exceeded" in refused.get_json()["detail"]
    # the lab's public prefix with a wrong secret is not the lab: its budget stays whole
    other = app_with(settings, engine, ratelimit_results="2/minute").test_client()
    spent = [send(other, f"fx_{prefix}_wrong", f"y{n}", ATTACKER).status_code for n in range(3)]
    assert spent == [401, 401, 429]
    assert [send(other, lab, f"r{n}", LAB_ADDR).status_code for n in range(2)] == [201, 201]
    assert stored(sessions) == 2  # only the lab's own results were stored
    # and an authenticated key is limited by its id, from any address
    assert send(other, lab, "r3", "198.51.100.1").status_code == 429


def test_password_guessing_one_account_from_many_addresses_backs_off(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        add_user(session, "xinhua", PASSWORD, "regulator", "新华区")
        add_user(session, "weidong", PASSWORD, "regulator", "卫东区")
    proxied = {"trusted_proxies": ("127.0.0.1",), "ratelimit_login_account": "3/hour"}
    app = app_with(settings, engine, **proxied)
    guesses = []
    for n in range(3):
        guesser = app.test_client()
        guesser.environ_base["HTTP_X_FORWARDED_FOR"] = f"198.51.100.{n}"
        guesses.append(login(guesser, "xinhua", f"guess number {n}"))
    assert guesses == [401, 401, 401]
    late = app.test_client()
    late.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.99"
    page = late.get("/login").get_data(as_text=True)
    token = TOKEN.search(page)
    assert token
    form = {"username": "xinhua", "password": PASSWORD, "csrf_token": token[1]}
    blocked = late.post("/login", data=form)
    assert blocked.status_code == 429  # even the right password waits out the backoff
    assert blocked.mimetype == "application/problem+json"
    assert "3 per 1 hour" in blocked.get_json()["detail"]
    assert late.get("/").status_code == 302  # not signed in: no session was issued
    assert login(app.test_client(), "weidong") == 302  # other accounts are not locked out
    assert login(app.test_client(), "weidong") == 302  # successes are not counted


def test_repeated_401s_are_one_audit_row_per_address_and_minute(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    market(sessions)
    for n in range(5):
        assert send(client, f"fx_{n:012x}_nope", f"z{n}", ATTACKER).status_code == 401
    assert send(client, "fx_ffffffffffff_nope", "z9", LAB_ADDR).status_code == 401
    with sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(r.client, r.status, r.attempts) for r in rows] == [
            (ATTACKER, 401, 5),
            (LAB_ADDR, 401, 1),
        ]
    assert stored(sessions) == 0
