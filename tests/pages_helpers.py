"""Helpers of the dashboard tests: a two-district city, accounts, and logging in."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.service.users import add_user
from tests.devices_helpers import kitchen, seed_targets
from tests.trace_helpers import market, post_results, result

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed_city(sessions: sessionmaker[Session]) -> None:
    """Two districts: 新华区 (market m-001, kitchen k-1) and 卫东区 (market m-002, kitchen k-2)."""
    seed_targets(sessions)
    market(sessions, "m-001", "rt-1")
    with sessions.begin() as session:
        registry.add_site(
            session, SiteIn(id="m-002", kind="market", district="卫东区", name="卫东菜市场")
        )
        registry.add_device(session, DeviceIn(id="rt-2", site="m-002", kind="rapid_test"), utcnow())
    kitchen(sessions, "k-1", ["cam-1"], district="新华区", created=utcnow())
    kitchen(sessions, "k-2", ["cam-2"], district="卫东区", created=utcnow())
    post_results(sessions, [result("r-1", 62.5), result("r-2", 20.0, sample="白菜")], "m-001")
    post_results(sessions, [result("r-3", 10.0)], "m-002", "rt-2")
    with sessions.begin() as session:
        add_user(session, "admin", PASSWORD, "admin")
        add_user(session, "xinhua", PASSWORD, "regulator", "新华区")


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> int:
    """Sign in through the form (with its CSRF token); return the response status."""
    page = client.get("/login")
    match = TOKEN.search(page.get_data(as_text=True))
    assert match, "login form without a CSRF token"
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": match[1]}
    )
    return response.status_code
