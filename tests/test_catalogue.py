"""The item catalogue as data: seeds, verdicts at every seeded threshold, CSV import, admin API."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.trace.results.catalogue import Catalogue, list_items
from fangxin.trace.results.catalogue_csv import items_from_csv, items_to_csv
from fangxin.trace.results.models import RapidTestResult, TestItem
from fangxin.trace.results.verdicts import VerdictError
from tests.helpers import count
from tests.refusals import refused
from tests.results_helpers import (  # noqa: F401 - fixtures
    auth,
    mqtt,
    post,
    posted,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

SEEDED = {
    "pesticide-ache",
    "pesticide-ache-nyt448",
    "clenbuterol",
    "ractopamine",
    "salbutamol",
    "formaldehyde",
    "sulfur-dioxide",
    "nitrite",
    "borax",
    "rongalite",
    "malachite-green",
}
QUALITATIVE = ["clenbuterol", "ractopamine", "salbutamol", "formaldehyde", "borax"]
QUALITATIVE += ["rongalite", "malachite-green"]

pytestmark = pytest.mark.usefixtures("pristine_catalogue")


@pytest.fixture
def catalogue(sessions: sessionmaker[Session]) -> Catalogue:
    with sessions() as session:
        return Catalogue.load(session)


def test_seeded_items(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        items = {i.code: i for i in list_items(session)}
        ache = session.get(TestItem, "pesticide-ache")
    assert set(items) >= SEEDED
    assert ache is not None
    assert (ache.standard, ache.unit, ache.positive_threshold, ache.suspect_from) == (
        "GB/T 5009.199-2003",
        "%",
        50.0,
        40.0,
    )
    assert "韭菜" in ache.false_positive_foods
    assert items["pesticide-ache-nyt448"].standard == "NY/T 448-2001"
    assert items["clenbuterol"].method == "胶体金免疫层析法"
    assert not items["clenbuterol"].quantitative
    assert items["rongalite"].name_zh.startswith("吊白块")
    so2 = {lim.food_category: lim.positive_threshold for lim in items["sulfur-dioxide"].limits}
    assert so2["蜜饯凉果"] == 350.0
    assert so2["干制蔬菜"] == 200.0


# The positive threshold each (item, food category) of the table below is judged against.
LIMITS: dict[tuple[str, str | None], float] = {
    ("pesticide-ache", "蔬菜"): 50.0,
    ("pesticide-ache", None): 50.0,
    ("pesticide-ache-nyt448", "蔬菜"): 70.0,
    ("sulfur-dioxide", "干制蔬菜"): 200.0,
    ("sulfur-dioxide", "蜜饯凉果"): 350.0,
    ("sulfur-dioxide", "干制的食用菌和藻类"): 50.0,
    ("sulfur-dioxide", "腐竹类"): 200.0,
    ("sulfur-dioxide", "水果干类"): 100.0,
    ("sulfur-dioxide", "腌渍的蔬菜"): 100.0,
    ("nitrite", "腌渍蔬菜"): 20.0,
    ("nitrite", "腌腊肉制品"): 30.0,
    ("nitrite", "酱卤肉制品"): 30.0,
    ("nitrite", "西式火腿"): 70.0,
}


@pytest.mark.parametrize(
    ("code", "category", "value", "verdict"),
    [
        ("pesticide-ache", "蔬菜", 0.0, "negative"),
        ("pesticide-ache", "蔬菜", 39.9, "negative"),
        ("pesticide-ache", "蔬菜", 40.0, "suspect"),
        ("pesticide-ache", "蔬菜", 49.9, "suspect"),
        ("pesticide-ache", "蔬菜", 50.0, "positive"),
        ("pesticide-ache", None, 50.1, "positive"),
        ("pesticide-ache-nyt448", "蔬菜", 49.9, "negative"),
        ("pesticide-ache-nyt448", "蔬菜", 50.0, "negative"),
        ("pesticide-ache-nyt448", "蔬菜", 69.9, "negative"),
        ("pesticide-ache-nyt448", "蔬菜", 70.0, "positive"),
        ("pesticide-ache-nyt448", "蔬菜", 70.1, "positive"),
        ("sulfur-dioxide", "干制蔬菜", 199.9, "negative"),
        ("sulfur-dioxide", "干制蔬菜", 200.0, "negative"),
        ("sulfur-dioxide", "干制蔬菜", 200.1, "positive"),
        ("sulfur-dioxide", "蜜饯凉果", 350.0, "negative"),
        ("sulfur-dioxide", "蜜饯凉果", 350.1, "positive"),
        ("sulfur-dioxide", "干制的食用菌和藻类", 50.1, "positive"),
        ("sulfur-dioxide", "腐竹类", 200.1, "positive"),
        ("sulfur-dioxide", "水果干类", 100.0, "negative"),
        ("sulfur-dioxide", "腌渍的蔬菜", 100.1, "positive"),
        ("nitrite", "腌渍蔬菜", 20.0, "negative"),
        ("nitrite", "腌渍蔬菜", 20.1, "positive"),
        ("nitrite", "腌腊肉制品", 30.1, "positive"),
        ("nitrite", "酱卤肉制品", 29.9, "negative"),
        ("nitrite", "西式火腿", 70.0, "negative"),
        ("nitrite", "西式火腿", 70.1, "positive"),
    ],
)
def test_quantitative_thresholds(
    catalogue: Catalogue, code: str, category: str | None, value: float, verdict: str
) -> None:
    judged = catalogue.judge(code, category, "样品", value, None, None)
    assert judged.verdict == verdict
    # the limit applied is the one of the item and category (GB 2760 / GB 2762, NY/T 448)
    assert judged.threshold == LIMITS[code, category]


@pytest.mark.parametrize("code", QUALITATIVE)
@pytest.mark.parametrize("reading", ["negative", "positive"])
def test_qualitative_items_take_the_reading(catalogue: Catalogue, code: str, reading: str) -> None:
    judged = catalogue.judge(code, None, "猪肉", None, None, reading)  # type: ignore[arg-type]
    assert (judged.verdict, judged.threshold) == (reading, None)
    with pytest.raises(VerdictError, match="needs a verdict"):
        catalogue.judge(code, None, "猪肉", None, None, None)


def test_category_limits_need_a_known_category(catalogue: Catalogue) -> None:
    with pytest.raises(VerdictError, match="for food category '鲜蔬菜'"):
        catalogue.judge("sulfur-dioxide", "鲜蔬菜", "白菜", 10.0, "mg/kg", None)
    with pytest.raises(VerdictError, match="no threshold"):
        catalogue.judge("nitrite", None, "咸菜", 10.0, "mg/kg", None)


def test_units_and_false_positive_foods(catalogue: Catalogue) -> None:
    assert catalogue.judge(
        "pesticide-ache", "蔬菜", "本地韭菜", 55.0, "％", None
    ).false_positive_risk
    assert not catalogue.judge(
        "pesticide-ache", "蔬菜", "菠菜", 55.0, "%", None
    ).false_positive_risk
    with pytest.raises(VerdictError, match="unit 'mg/kg' is not the catalogue's '%'"):
        catalogue.judge("pesticide-ache", "蔬菜", "菠菜", 55.0, "mg/kg", None)
    assert catalogue.resolve("亚硝酸盐") == "nitrite"


def test_stored_result_keeps_the_limit_it_was_judged_by(sessions: sessionmaker[Session]) -> None:
    setup_market(sessions)
    sample = {"name": "韭菜", "category": "蔬菜", "stall": "B-3"}
    mqtt(sessions, posted("r-1", 50.0, sample=sample))
    with sessions() as session:
        row = session.scalars(select(RapidTestResult)).one()
    assert (row.verdict, row.threshold, row.comparator) == ("positive", 50.0, "ge")
    assert row.false_positive_risk is True


CSV_ROWS = [
    "code,name_zh,method,standard,unit,quantitative,comparator,threshold,suspect_from,"
    "food_category,applies_to,false_positives,note",
    "histamine,组胺,比色法,GB 2733,mg/100g,1,gt,,,,鱼类,,",
    "histamine,组胺,比色法,GB 2733,mg/100g,1,gt,40,,高组胺鱼类,,,GB 2733",
    "histamine,组胺,比色法,GB 2733,mg/100g,1,gt,20,,其他海水鱼类,,,GB 2733",
    "pesticide-ache,有机磷和氨基甲酸酯类农药残留（酶抑制率法）,酶抑制率法（分光光度法）,"
    "GB/T 5009.199-2003,%,1,ge,50,40,,蔬菜、水果,韭菜、洋葱,",
    "broken,坏,x,y,%,1,ge,,,,,,",
]
CSV = "\n".join(CSV_ROWS) + "\n"


def test_csv_import_and_export(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sessions: sessionmaker[Session]
) -> None:
    path = tmp_path / "items.csv"
    path.write_text(CSV, encoding="utf-8")
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    out = CliRunner().invoke(main, ["catalogue", "import", str(path)])
    assert out.exit_code == 1  # one item refused
    assert "2 items imported (1 new, 1 replaced), 1 refused" in out.output
    assert "item broken" in out.output
    assert "needs positive_threshold or per-category limits" in out.output
    with sessions() as session:
        catalogue = Catalogue.load(session)
        ache = session.get(TestItem, "pesticide-ache")
        assert session.get(TestItem, "broken") is None  # the refused row stored nothing
    assert (
        catalogue.judge("histamine", "高组胺鱼类", "鲐鱼", 40.1, None, None).verdict == "positive"
    )
    assert (
        catalogue.judge("histamine", "其他海水鱼类", "带鱼", 20.0, None, None).verdict == "negative"
    )
    assert ache is not None
    assert ache.false_positive_foods == ["韭菜", "洋葱"]
    exported = CliRunner().invoke(main, ["catalogue", "export"])
    assert exported.exit_code == 0
    items, errors = items_from_csv(__import__("csv").DictReader(exported.output.splitlines()))
    assert errors == []
    with sessions() as session:
        assert items_to_csv(items) == items_to_csv(list_items(session))


def test_admin_api_edits_the_catalogue(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    body = {
        "name_zh": "双氧水",
        "method": "比色法",
        "standard": "GB 2760",
        "unit": "mg/kg",
        "comparator": "gt",
        "positive_threshold": 10.0,
        "food_categories": ["水发产品"],
    }
    lab_put = client.put("/api/v1/catalogue/h2o2", json=body, headers=auth(keys.lab))
    refused(lab_put, 403, "role lab may not do this")
    assert client.get("/api/v1/catalogue/h2o2").status_code == 404  # nothing stored
    created = client.put("/api/v1/catalogue/h2o2", json=body, headers=auth(keys.admin))
    assert created.status_code == 201
    assert created.get_json()["positive_threshold"] == 10.0
    again = client.put(
        "/api/v1/catalogue/h2o2", json={**body, "positive_threshold": 5.0}, headers=auth(keys.admin)
    )
    assert again.status_code == 200
    assert client.get("/api/v1/catalogue/h2o2").get_json()["positive_threshold"] == 5.0
    bad = client.put(
        "/api/v1/catalogue/x", json={**body, "positive_threshold": None}, headers=auth(keys.admin)
    )
    refused(bad, 422, "a quantitative item needs positive_threshold or per-category limits")
    assert client.get("/api/v1/catalogue/x").status_code == 404
    codes = {i["code"] for i in client.get("/api/v1/catalogue").get_json()}
    assert "h2o2" in codes
    assert codes >= SEEDED
    assert client.delete("/api/v1/catalogue/h2o2", headers=auth(keys.admin)).status_code == 200
    assert "h2o2" not in {i["code"] for i in client.get("/api/v1/catalogue").get_json()}
    with client.application.app_context():
        from fangxin.service.api.results import pipeline

        pipeline().cache.items_at = -1e9  # the cache would pick the edit up within seconds
    retired = post(client, keys.lab, posted("r-1", 12.0, item="h2o2", unit="mg/kg"))
    assert "retired" in refused(retired, 422, "1 refused")["results"][0]["error"]
    assert count(sessions, RapidTestResult) == 0
