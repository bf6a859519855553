"""Dashboard pages on seeded data: login, CSRF, figures, district scoping, KPI export."""

from __future__ import annotations

import io
import re

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from tests.pages_helpers import login, seed_city

TAG = re.compile(r"<[^>]+>")


def text(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return re.sub(r"\s+", " ", TAG.sub(" ", response.get_data(as_text=True)))


def test_login_required_and_csrf(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    seed_city(sessions)
    response = client.get("/kpi")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/kpi")
    no_token = client.post("/login", data={"username": "admin", "password": "x" * 12})
    assert no_token.status_code == 400
    assert login(client, "admin", "wrong password") == 401
    assert login(client, "admin") == 302
    assert client.get("/").status_code == 200
    assert client.post("/logout").status_code == 400  # no CSRF token
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.http_only
    assert cookie.same_site == "Lax"


def test_overview_figures(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    seed_city(sessions)
    assert login(client, "admin") == 302
    page = text(client, "/")
    # 新华区: 2 batches, 1 positive, pass rate 50 %; 卫东区: 1 batch, no positive.
    assert "新华区 1 2 1 50.0%" in page
    assert "卫东区 1 1 0 100.0%" in page
    assert "目标 90%" in page
    assert "目标 100%" in page
    assert 'src="/charts/uptime.svg"' in client.get("/").get_data(as_text=True)
    svg = client.get("/charts/tests.svg")
    assert svg.status_code == 200
    assert svg.mimetype == "image/svg+xml"
    assert "快检批次" in svg.get_data(as_text=True)
    assert "Asia/Shanghai" in svg.get_data(as_text=True)


def test_district_scoping(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    seed_city(sessions)
    assert login(client, "xinhua") == 302
    page = text(client, "/")
    assert "新华区" in page
    assert "卫东区" not in page
    assert client.get("/sites/m-001").status_code == 200
    assert client.get("/sites/m-002").status_code == 404
    assert client.get("/sites/k-2").status_code == 404
    assert client.get("/devices/cam-1").status_code == 200
    assert client.get("/devices/cam-2").status_code == 404
    kpi = text(client, "/kpi")
    assert "新华区" in kpi
    assert "卫东区" not in kpi


def test_site_and_device_pages(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    seed_city(sessions)
    assert login(client, "admin") == 302
    site = text(client, "/sites/m-001")
    assert "快检批次 2" in site
    assert "阳性 1" in site
    assert "菠菜" in site
    assert "白菜" in site
    assert "阳性" in site
    assert "rt-1" in site
    device = text(client, "/devices/cam-1?days=7")
    assert "在线时间线" in device
    assert "k-1 食堂" in device
    assert client.get("/devices/nope").status_code == 404


def test_kpi_and_xlsx(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    seed_city(sessions)
    assert login(client, "admin") == 302
    page = text(client, "/kpi")
    assert "快检批次(每千人)" in page
    assert "4 批次/千人/年" in page
    # 新华区: 2 batches / 470,000 inhabitants
    assert "2 批次 / 常住人口 470000" in page
    response = client.get("/kpi.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert sheet is not None
    rows = [r for r in sheet.iter_rows(min_row=3, values_only=True)]
    tests = {r[0]: r for r in rows if r[1] == "快检批次(每千人)"}
    assert tests["新华区"][2] == 4.0
    value = tests["新华区"][3]
    assert isinstance(value, float)
    assert abs(value - 2 / 470) < 1e-3
    assert client.get("/kpi?year=2019").status_code == 404


def test_kept_charts_are_kept_per_district(
    app: Flask, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    seed_city(sessions)
    assert login(client, "admin") == 302
    city = client.get("/charts/uptime.svg").get_data(as_text=True)
    assert "全市" in city
    assert client.get("/charts/uptime.svg").get_data(as_text=True) == city  # drawn once
    district = app.test_client()
    assert login(district, "xinhua") == 302
    mine = district.get("/charts/uptime.svg").get_data(as_text=True)
    assert "新华区" in mine
    assert "全市" not in mine
