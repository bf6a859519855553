"""The public board and its JSON: today's figures, latest results, how positives are handled."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.helpers import CST, counted, result
from tests.results_helpers import (  # noqa: F401 - fixtures
    SITE,
    auth,
    mqtt,
    post,
    posted,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

pytestmark = pytest.mark.usefixtures("pristine_catalogue")
STATUS_QUERIES, BOARD_QUERIES = 5, 4  # issue 17 item 4


def a_day_of_tests(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    """Six batches today (3 negative, 1 suspect, 2 positive), two retests, one old result."""
    keys = setup_market(sessions)
    yesterday = (dt.datetime.now(CST) - dt.timedelta(days=1)).isoformat()
    vegetables = [("菠菜", "A-01"), ("芹菜", "A-02"), ("黄瓜", "A-03"), ("油麦菜", "A-04")]
    mqtt(
        sessions,
        *[
            result(f"n-{i}", v, sample={"name": name, "category": "蔬菜", "stall": stall})
            for i, ((name, stall), v) in enumerate(
                zip(vegetables, [10.0, 20.0, 30.0, 45.0], strict=True)
            )
        ],
        result("old", 80.0, ts=yesterday),
    )
    cowpea = {"name": "豇豆", "category": "蔬菜", "stall": "B-07"}
    post(client, keys.lab, [posted("p-1", 72.0, sample=cowpea), posted("p-2", 55.0)])
    mqtt(
        sessions,
        result("p-1a", 70.0, retest_of="p-1", sample=cowpea),
        result("p-1b", 66.0, retest_of="p-1", sample=cowpea),
    )
    confirmed = client.get("/api/v1/followups?state=confirmed", headers=auth(keys.lab))
    fid = confirmed.get_json()[0]["id"]
    stop = client.post(
        f"/api/v1/followups/{fid}/actions", json={"action": "stop_sale"}, headers=auth(keys.lab)
    )
    assert stop.status_code == 200


def test_day_json(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    a_day_of_tests(client, sessions)
    body = client.get(f"/api/v1/sites/{SITE}/results").get_json()
    summary = body["summary"]
    assert {k: summary[k] for k in ("tests", "negatives", "suspect", "positives", "retests")} == {
        "tests": 6,
        "negatives": 3,
        "suspect": 1,
        "positives": 2,
        "retests": 2,
    }
    assert summary["pass_rate"] == pytest.approx(4 / 6, abs=1e-4)
    assert summary["open_cases"] == 1
    assert body["date"] == dt.datetime.now(CST).date().isoformat()
    handling = {p["id"]: p["followup"]["state_zh"] for p in body["positives"]}
    assert handling == {"p-1": "已下架", "p-2": "待复检"}
    assert len(body["results"]) == 8
    retest_of = {r["id"]: r["retest_of"] for r in body["results"]}  # ids as the devices gave them
    assert (retest_of["p-1a"], retest_of["p-1"]) == ("p-1", None)
    assert "tester" not in body["results"][0]  # a public page shows no personal data
    yesterday = (dt.datetime.now(CST) - dt.timedelta(days=1)).date().isoformat()
    old = client.get(f"/api/v1/sites/{SITE}/results?date={yesterday}").get_json()
    assert (old["summary"]["tests"], old["summary"]["positives"]) == (1, 1)
    assert client.get(f"/api/v1/sites/{SITE}/results?date=11/29").status_code == 400
    assert client.get("/api/v1/sites/nowhere/results").status_code == 404


def test_status_gains_rapid_test_figures(
    client: FlaskClient, sessions: sessionmaker[Session], engine: Engine
) -> None:
    a_day_of_tests(client, sessions)
    with counted(engine) as statements:
        status = client.get(f"/api/v1/sites/{SITE}/status").get_json()
    assert len(statements) <= STATUS_QUERIES, statements
    assert status["tests_today"] == 6
    assert "positives_today" not in status  # batches by verdict: the day's summary
    assert "suspect_today" not in status
    summary = client.get(f"/api/v1/sites/{SITE}/results").get_json()["summary"]
    assert (summary["tests"], summary["positives"], summary["suspect"]) == (6, 2, 1)
    assert status["pass_rate_today"] == pytest.approx(4 / 6, abs=1e-4)
    assert status["open_cases"] == 1
    assert status["last_result_at"] is not None
    assert "last_test_at" not in status
    assert status["results_today"]["total"] == 8  # every result, retests included


def test_board_page(client: FlaskClient, sessions: sessionmaker[Session], engine: Engine) -> None:
    a_day_of_tests(client, sessions)
    with counted(engine) as statements:
        page = client.get(f"/m/{SITE}/board")
    assert len(statements) <= BOARD_QUERIES, statements
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert re.search(r'http-equiv="refresh" content="\d+"', html)
    figures = dict(re.findall(r'id="([a-z-]+)">([^<]+)<', html))
    assert figures == {
        "tests": "6",
        "negatives": "3",
        "suspect": "1",
        "positives": "2",
        "pass-rate": "66.7%",
    }
    assert "快速检测公示" in html
    assert "豇豆" in html
    assert "B-07" in html
    assert "已下架（复检 2 次）" in html
    assert "待复检" in html
    assert "有机磷和氨基甲酸酯类农药残留" in html
    # nothing from outside the app: no CDN, no inline script
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html
    css = re.search(r'href="([^"]+board\.css)"', html)
    assert css is not None
    assert client.get(css.group(1)).status_code == 200


def test_board_of_a_quiet_day(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    setup_market(sessions)
    html = client.get(f"/m/{SITE}/board").get_data(as_text=True)
    assert "今日暂无检测结果" in html
    assert 'id="pass-rate">—<' in html
    assert client.get("/m/nowhere/board").status_code == 404
