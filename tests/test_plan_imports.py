"""Imports of the plan's data over HTTP and the CLI: row errors, nothing half-imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.service.auth import create_key
from fangxin.trace.plan.models import KitchenForm, Licence, PlanFigure, Population, SamplingCount
from tests.plan_helpers import licence, seed_populations


def rows_of(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def post(client: FlaskClient, key: str, kind: str, body: object) -> tuple[int, dict[str, Any]]:
    response = client.post(
        f"/api/v1/plan/imports/{kind}", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    return response.status_code, response.get_json(force=True)


def test_a_bad_row_refuses_the_whole_import_with_each_row_named(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    good, bad = licence("L1", "大型餐饮"), licence("L2", "网红餐饮")
    status, body = post(
        client, admin_key, "licences", {"source": "许可登记 2025-12", "rows": [good, bad, good]}
    )
    assert status == 422
    assert body["title"] == "Rows refused"
    assert [e["line"] for e in body["errors"]] == [2, 3]
    assert "category must be one of" in body["errors"][0]["error"]
    assert "same key as line 1" in body["errors"][1]["error"]
    assert rows_of(sessions, Licence) == 0
    status, body = post(client, admin_key, "licences", {"source": "许可登记", "rows": [good]})
    assert (status, body["created"], body["updated"]) == (200, 1, 0)
    # Importing again updates (an admin's correction), it never duplicates.
    status, body = post(client, admin_key, "licences", {"source": "许可登记", "rows": [good]})
    assert (status, body["created"], body["updated"]) == (200, 0, 1)


@pytest.mark.parametrize(
    ("kind", "row", "error"),
    [
        (
            "sampling",
            {"district": "叶县", "from": "2025-12-01", "to": "2026-01-31", "batches": 5},
            "one calendar year",
        ),
        (
            "sampling",
            {"district": "叶县", "from": "2025-02-01", "to": "2025-01-31", "batches": 5},
            "to is before from",
        ),
        (
            "sampling",
            {"district": "叶县", "from": "2025-01-01", "to": "2025-01-31", "batches": -1},
            "batches",
        ),
        (
            "forms",
            {"licence_no": "NOPE", "form": "video", "accepted": "是", "inspected_on": "2025-01-01"},
            "not in the register",
        ),
        (
            "forms",
            {"licence_no": "L1", "form": "玻璃墙", "accepted": "是", "inspected_on": "2025-01-01"},
            "form must be",
        ),
        (
            "figures",
            {"code": "mclz", "district": "叶县", "year": 2025, "numerator": 1},
            "code must be one of",
        ),
        (
            "figures",
            {"code": "six_s", "district": "叶县", "year": 2025, "numerator": 5, "denominator": 4},
            "exceeds",
        ),
        ("populations", {"district": "叶县", "population": 0, "source": "七普公报"}, "population"),
    ],
)
def test_rows_refused_at_their_edges(
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    kind: str,
    row: dict[str, Any],
    error: str,
) -> None:
    post(client, admin_key, "licences", {"source": "许可登记", "rows": [licence("L1", "中型餐饮")]})
    status, body = post(client, admin_key, kind, {"source": "测试", "rows": [row]})
    assert status == 422, body
    assert error in body["errors"][0]["error"]
    for model in (SamplingCount, KitchenForm, PlanFigure):
        assert rows_of(sessions, model) == 0


def test_csv_over_http_and_roles(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    seed_populations(sessions)
    csv = "\ufeffdistrict,population,source\n新华区,123456,平顶山市第七次全国人口普查公报\n"
    response = client.post(
        "/api/v1/plan/imports/populations",
        data=csv.encode(),
        content_type="text/csv",
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert response.status_code == 200, response.get_json()
    with sessions() as session:
        row = session.get(Population, "新华区")
        assert row is not None
    assert (row.population, row.confirmed) == (123456, True)
    with sessions() as session:
        regulator = create_key(session, "regulator", name="r", district="新华区")
        session.commit()
    status, body = post(client, regulator, "sampling", {"source": "x", "rows": []})
    assert status == 403
    status, body = post(client, admin_key, "sampling", {"rows": [{"district": "叶县"}]})
    assert (status, body["detail"]) == (422, "name the source (document, office, date)")
    status, _ = post(client, admin_key, "nothing", {"source": "x", "rows": []})
    assert status == 404
    kpis = client.get(
        "/api/v1/plan/kpis?year=2025", headers={"Authorization": f"Bearer {regulator}"}
    )
    assert kpis.status_code == 200
    rows = kpis.get_json()["kpis"]
    assert {r["district"] for r in rows} == {"新华区"}
    sampling = next(r for r in rows if r["code"] == "sampling_per_1000")
    assert (sampling["clause"], sampling["value"], sampling["missing"]) == (
        "三（一）",
        None,
        "未导入",
    )


def test_cli_import_is_all_or_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sessions: sessionmaker[Session]
) -> None:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    path = tmp_path / "licences.csv"
    path.write_text(
        "licence_no,name,category,district,address\n"
        "JY1,一中食堂,学校（含托幼）食堂,新华区,建设路1号\n"
        "JY2,张记,小吃,新华区,建设路2号\n",
        encoding="utf-8",
    )
    out = runner.invoke(main, ["plan", "import", "licences", str(path), "--source", "许可登记"])
    assert out.exit_code == 1
    assert "line 3: category: Value error, category must be one of" in out.output
    assert rows_of(sessions, Licence) == 0
    path.write_text(path.read_text(encoding="utf-8").replace("小吃", "小餐饮"), encoding="utf-8")
    out = runner.invoke(main, ["plan", "import", "licences", str(path), "--source", "许可登记"])
    assert out.exit_code == 0, out.output
    assert "licences: 2 created, 0 updated" in out.output
    assert rows_of(sessions, Licence) == 2
