"""Exports of results with Chinese headers, opened with real readers (csv, openpyxl)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.service.auth import create_key
from fangxin.trace.results.exports import HEADERS
from tests.conftest import MovableClock
from tests.helpers import CST, result
from tests.results_helpers import (  # noqa: F401 - fixtures
    SITE,
    Market,
    auth,
    mqtt,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

pytestmark = pytest.mark.usefixtures("pristine_catalogue")


def two_districts(sessions: sessionmaker[Session], clock: MovableClock) -> tuple[Market, str]:
    """Three results at a 新华区 market, one at a 卫东区 market, one of last week; their day.

    The app's clock stops a minute after the tests: "today" is theirs, even across midnight.
    """
    tested = utcnow().astimezone(CST)
    clock.set(tested + dt.timedelta(minutes=1))
    keys = setup_market(sessions)
    with sessions.begin() as session:
        registry.add_site(
            session, SiteIn(id="m-east", kind="market", district="卫东区", name="东区市场")
        )
        registry.add_device(
            session, DeviceIn(id="rt-east", site="m-east", kind="rapid_test"), utcnow()
        )
    now, last_week = tested.isoformat(), (tested - dt.timedelta(days=7)).isoformat()
    sample = {"name": "韭菜", "category": "蔬菜", "stall": "C-3", "certificate": "HGZ-42"}
    mqtt(
        sessions,
        result("r-1", 12.5, ts=now),
        result("r-2", 45.0, sample=sample, ts=now),
        result("r-3", 66.0, tester="王芳", ts=now),
        result("r-old", 10.0, ts=last_week),
    )
    mqtt(sessions, result("e-1", 20.0, ts=now), site="m-east", device="rt-east")
    return keys, tested.date().isoformat()


def test_csv_opens_with_chinese_headers(
    client: FlaskClient, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    keys, today = two_districts(sessions, clock)
    response = client.get(
        f"/api/v1/results/export?format=csv&from={today}&to={today}", headers=auth(keys.regulator)
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())  # Excel reads the Chinese as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0]) == list(HEADERS)
    assert [r["结果编号"] for r in rows] == ["r-1", "r-2", "r-3"]  # 新华区 only, today only
    second = rows[1]
    assert (second["市场名称"], second["县（市、区）"], second["摊位"]) == (
        "测试市场",
        "新华区",
        "C-3",
    )
    assert (second["检测值"], second["判定限"], second["判定结果"]) == ("45.0", "50.0", "可疑")
    assert (second["假阳性风险"], second["合格证编号"]) == ("是", "HGZ-42")
    assert second["检测项目"].startswith("有机磷")
    assert rows[2]["处置状态"] == "暂停销售，待复测"
    assert rows[2]["检测员"] == "王芳"
    assert rows[0]["检测时间"].startswith(today)
    assert len(rows[0]["检测时间"]) == len("2026-11-29 07:58:10")


def test_xlsx_opens_with_openpyxl(
    client: FlaskClient, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    keys, today = two_districts(sessions, clock)
    week_ago = (dt.date.fromisoformat(today) - dt.timedelta(days=7)).isoformat()
    response = client.get(
        f"/api/v1/results/export?format=xlsx&from={week_ago}&to={today}", headers=auth(keys.admin)
    )
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    sheet = book.active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == HEADERS
    assert sorted(str(r[HEADERS.index("结果编号")]) for r in rows[1:]) == [
        "e-1",
        "r-1",
        "r-2",
        "r-3",
        "r-old",
    ]
    first = rows[1]
    assert isinstance(first[0], dt.datetime)
    assert first[HEADERS.index("结果编号")] == "r-old"  # oldest first
    assert first[HEADERS.index("检测值")] == 10.0


def test_scopes_and_bad_requests(
    client: FlaskClient, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    keys, today = two_districts(sessions, clock)
    lab = client.get("/api/v1/results/export", headers=auth(keys.lab))
    assert lab.status_code == 200
    ids = [r["结果编号"] for r in csv.DictReader(io.StringIO(lab.get_data().decode("utf-8-sig")))]
    assert ids == ["r-1", "r-2", "r-3"]  # its own site only
    assert (
        client.get("/api/v1/results/export?site=m-east", headers=auth(keys.lab)).status_code == 403
    )
    east = client.get("/api/v1/results/export?district=卫东区", headers=auth(keys.regulator))
    assert east.status_code == 403
    with sessions() as session:
        city = create_key(session, "regulator")
        session.commit()
    by_site = client.get("/api/v1/results/export?site=m-east", headers=auth(city))
    assert "e-1" in by_site.get_data(as_text=True)
    everything = client.get("/api/v1/results/export", headers=auth(city))
    # read to the end: a streamed export holds its transaction until then
    assert "e-1" in everything.get_data(as_text=True)
    assert client.get("/api/v1/results/export?format=pdf", headers=auth(city)).status_code == 400
    backwards = f"/api/v1/results/export?from={today}&to=2020-01-01"
    assert client.get(backwards, headers=auth(city)).status_code == 400
    assert client.get("/api/v1/results/export").status_code == 401
    assert SITE == "m-300"
