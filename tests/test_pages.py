"""Dashboard pages on seeded data: login, CSRF, figures, district scoping, KPI export."""

from __future__ import annotations

import io
import re

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from tests.pages_helpers import login, seed_city
from tests.plan_helpers import licence, load, seed_populations

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
    seed_populations(sessions)
    load(
        sessions,
        "sampling",
        [{"district": "叶县", "from": "2024-01-01", "to": "2024-12-31", "batches": 2810}],
    )
    assert login(client, "admin") == 302
    page = text(client, "/kpi?year=2024")
    assert "《平顶山市深化食品安全放心工程建设攻坚行动工作方案（2022—2024年）》" in page
    assert "抽检量（批次/千人）" in page
    assert "三（一） 食用农产品和食品抽检量达到4批次/千人" in page
    assert "4.001 批次/千人 ≥ 4 批次/千人 方案 三（一） 达标 2810 / 702.345" in page
    assert "未导入" in page  # 新华区's 抽检 counts: never a made-up zero
    for raw in ("mclz", "internet_mclz", "区县", "斤"):
        assert raw not in page
    later = text(client, "/kpi")  # the current year is past the plan's end
    assert "方案执行期至2024年" in later
    assert "本地目标（本地设置）" in later
    response = client.get("/kpi.xlsx?year=2024")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert sheet is not None
    header = [c.value for c in sheet[3]]
    assert header[:4] == ["县（市、区）", "指标", "条款", "定义"]
    rows = {(r[0], r[1]): r for r in sheet.iter_rows(min_row=4, values_only=True)}
    ye = rows[("叶县", "抽检量（批次/千人）")]
    assert ye[4:13] == (
        2810,
        "抽检批次（导入，按县（市、区）与期间）",
        702.345,
        "常住人口（第七次全国人口普查）÷ 1000",
        "2024-01-01至2024-12-31",
        4.001,
        "≥ 4 批次/千人",
        "方案 三（一）",
        "达标",
    )
    assert rows[("新华区", "抽检量（批次/千人）")][9] == "未导入"
    assert client.get("/kpi?year=2021").status_code == 404


def test_overview_kitchens_use_the_kpi_definitions(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    seed_city(sessions)  # k-1 (新华区) and k-2 (卫东区) both carry licence JY14104020000001
    load(
        sessions,
        "licences",
        [licence("JY14104020000001", "大型餐饮"), licence("JY2", "中型餐饮")],
    )
    load(
        sessions,
        "forms",
        [{"licence_no": "JY2", "form": "glass", "accepted": "是", "inspected_on": "2024-01-02"}],
    )
    assert login(client, "admin") == 302
    page = text(client, "/")
    # 新华区: 1 of 2 licensed caterers has an accepted form; its one 大型 licence's kitchens
    # were never online, so 互联网+ is 0 of 1; 卫东区 has no licence in the register.
    assert "新华区 50.0% 0.0%" in page
    assert "卫东区 未导入 未导入" in page
    assert "阳性（待复测）" in page
    assert "凭合格证入场率" in page
    for word in ("合格率", "区县", "入场查验率"):
        assert word not in page.replace("凭合格证入场率", "")


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
