"""Catalogue rules of issue 13: editions and clauses, GB 2760 codes and aliases, 不得使用 rows,
scopes (GB/T 5009.199 vegetables only, formaldehyde only 水发/干水产品), reagent-lot cut-offs."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.ingest.models import DeadLetter
from fangxin.service.api.results import pipeline
from fangxin.trace.results.models import RapidTestResult
from tests.helpers import result
from tests.results_helpers import (  # noqa: F401 - fixtures
    Market,
    auth,
    mqtt,
    post,
    posted,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

pytestmark = pytest.mark.usefixtures("pristine_catalogue")


def judged(
    client: FlaskClient,
    keys: Market,
    rid: str,
    item: str,
    value: float | None,
    category: str,
    **extra: Any,
) -> Any:
    """Post one result and return the outcome the door reports for it."""
    sample = {"name": extra.pop("name", "样品"), "category": category}
    unit = extra.pop("unit", "mg/kg")
    body = posted(rid, value, item=item, unit=unit, sample=sample, **extra)
    return post(client, keys.lab, body).get_json()["results"][0]


@pytest.mark.parametrize(
    ("item", "category", "limit"),
    [
        ("nitrite", "腌渍蔬菜", 20.0),  # GB 2762's name
        ("nitrite", "腌渍的蔬菜", 20.0),  # GB 2760's name of the same pickle
        ("nitrite", "04.02.02.03", 20.0),  # its Annex E code
        ("nitrite", "肉灌肠类", 30.0),
        ("nitrite", "熏烧烤肉类", 30.0),
        ("nitrite", "油炸肉类", 30.0),
        ("nitrite", "发酵肉制品", 30.0),
        ("nitrite", "肉罐头", 50.0),
        ("sulfur-dioxide", "经表面处理的鲜水果", 50.0),
        ("sulfur-dioxide", "果酱", 100.0),
        ("sulfur-dioxide", "豆芽", 10.0),  # 不得使用: above the method's detection limit
    ],
)
def test_limits_at_their_edges(
    client: FlaskClient, sessions: sessionmaker[Session], item: str, category: str, limit: float
) -> None:
    keys = setup_market(sessions)
    at = judged(client, keys, "at", item, limit, category)
    above = judged(client, keys, "above", item, limit + 0.01, category)
    assert (at["verdict"], above["verdict"]) == ("negative", "positive")


def test_unknown_category_names_the_aliases(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    refused = post(
        client,
        keys.lab,
        posted("x", 5.0, item="nitrite", unit="mg/kg", sample={"name": "泡菜", "category": "泡菜"}),
    )
    assert refused.status_code == 422
    error = refused.get_json()["results"][0]["error"]
    assert "泡菜" in error
    assert "腌渍的蔬菜（04.02.02.03，又称 腌渍蔬菜" in error
    stats = mqtt(
        sessions,
        result("y", 5.0, item="nitrite", unit="mg/kg", sample={"name": "泡菜", "category": "泡菜"}),
    )
    assert stats.dead_letters == 1
    with sessions() as session:
        assert "腌渍蔬菜" in session.scalars(select(DeadLetter.reason)).one()
        assert session.scalars(select(RapidTestResult)).all() == []


@pytest.mark.parametrize(
    ("item", "category", "verdict", "refused"),
    [
        ("pesticide-ache", "水果", None, "GB/T 5009.199"),  # the standard covers vegetables
        ("pesticide-ache", "苹果", None, "outside its scope"),
        ("pesticide-ache", "叶菜类", None, None),  # a kind of vegetable
        ("formaldehyde", "水产品", "negative", "outside its scope"),  # fresh: natural formaldehyde
        ("formaldehyde", "水发产品", "negative", None),
        ("formaldehyde", "干水产品", "positive", None),
    ],
)
def test_items_judge_only_their_foods(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    item: str,
    category: str,
    verdict: str | None,
    refused: str | None,
) -> None:
    keys = setup_market(sessions)
    value, unit = (30.0, "%") if verdict is None else (None, "mg/kg")
    extra = {"verdict": verdict} if verdict else {}
    outcome = judged(client, keys, "s-1", item, value, category, unit=unit, **extra)
    if refused is None:
        assert outcome["status"] == "stored", outcome
    else:
        assert outcome["status"] == "rejected"
        assert refused in outcome["error"]


def test_reagent_lot_cutoff_is_recorded(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    lot = {"cutoff": 0.5, "unit": "µg/kg", "maker": "某试剂公司", "expires": "2027-06-30"}
    url = "/api/v1/catalogue/clenbuterol/lots/KL2411"
    assert client.put(url, json=lot, headers=auth(keys.lab)).status_code == 403
    assert client.put(url, json=lot, headers=auth(keys.admin)).status_code == 201
    assert client.put(url, json=lot | {"cutoff": 0.3}, headers=auth(keys.admin)).status_code == 200
    assert client.put(url, json=lot | {"cutoff": 0}, headers=auth(keys.admin)).status_code == 422
    quantitative = client.put(
        "/api/v1/catalogue/nitrite/lots/N1", json=lot, headers=auth(keys.admin)
    )
    assert quantitative.status_code == 422
    listed = client.get("/api/v1/catalogue/clenbuterol/lots").get_json()
    assert [(x["lot"], x["cutoff"]) for x in listed] == [("KL2411", 0.3)]
    with client.application.app_context():
        pipeline().cache.items_at = -1e9  # the cache would pick the lot up within seconds
    meat = {"name": "猪肉", "category": "畜禽肉"}
    body = [
        posted(
            "k-1",
            None,
            item="clenbuterol",
            unit=None,
            verdict="negative",
            sample=meat,
            reagent_lot="KL2411",
        ),
        posted(
            "k-2",
            None,
            item="clenbuterol",
            unit=None,
            verdict="negative",
            sample=meat,
            reagent_lot="OTHER",
        ),
    ]
    assert post(client, keys.lab, body).status_code == 201
    with sessions() as session:
        rows = session.execute(select(RapidTestResult.result_id, RapidTestResult.threshold))
        stored = {rid: threshold for rid, threshold in rows}
    assert stored == {"k-1": 0.3, "k-2": None}  # an unregistered lot has no known cut-off


def test_catalogue_cites_editions_and_sources(client: FlaskClient) -> None:
    items = {i["code"]: i for i in client.get("/api/v1/catalogue?limit=100").get_json()}
    assert "整顿办函〔2010〕50号" in items["clenbuterol"]["standard"]
    assert "GB/T 22286" in items["ractopamine"]["standard"]
    assert "农业农村部公告第250号" in items["malachite-green"]["standard"]
    assert all(items[c]["banned"] for c in ("clenbuterol", "malachite-green", "borax", "rongalite"))
    assert not items["nitrite"]["banned"]
    assert items["sulfur-dioxide"]["standard"].startswith("GB 2760-2024")
    for code in ("sulfur-dioxide", "nitrite"):
        for limit in items[code]["limits"]:
            assert limit["source"], limit  # every limit says where it comes from
            assert limit["category_code"], limit
    beansprouts = next(
        x for x in items["sulfur-dioxide"]["limits"] if x["food_category"] == "豆芽菜"
    )
    assert beansprouts["not_permitted"]
    assert "不得使用" in beansprouts["source"]
    assert "本地设置" in beansprouts["source"]
    ache = items["pesticide-ache"]
    assert (ache["food_categories"], ache["strict_scope"]) == (["蔬菜"], True)
    assert ache["suspect_basis"].startswith("本地设置")
    assert "5009.199" not in ache["suspect_basis"]
    assert items["formaldehyde"]["food_categories"] == ["水发产品", "干水产品"]
    for code, limit in (("carbofuran", "0.02"), ("phorate", "0.01"), ("omethoate", "0.02")):
        kit = items[code]
        assert f"GB 2763-2021 最大残留限量 {limit} mg/kg（待核实）" == kit["standard"]
        assert kit["food_categories"] == ["豇豆", "韭菜", "芹菜"]
        assert "韭菜、芹菜易出现假阳性" in kit["note"]
        assert "治违禁" in kit["note"]
    assert {"韭菜", "芹菜"} <= set(ache["false_positive_foods"])
