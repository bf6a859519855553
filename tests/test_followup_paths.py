"""A regulator's 快检 (4-hour 复检 window), banned substances (封存, 行刑衔接), tracing upstream."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.ingest.models import DeadLetter
from fangxin.trace.results.followup_models import Followup, FollowupAlert
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import MovableClock, unique
from tests.helpers import (
    count,
    dumps,
    publish_all,
    publisher,
    register,
    result,
    running_ingester,
    wait_until,
)
from tests.results_helpers import (  # noqa: F401 - fixtures
    auth,
    mqtt,
    post,
    posted,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)
from tests.test_followup import DISPOSAL, LAB, REPORT, act, followup_of

pytestmark = pytest.mark.usefixtures("pristine_catalogue")
MEAT = {"name": "猪肉", "category": "畜禽肉", "stall": "C-03", "certificate": "HGZ-9"}
REFERRAL = {"agency": "新华区公安分局", "referral_no": "XH-YX-2026-03"}


def deadline_of(client: FlaskClient, key: str, fid: int) -> dt.datetime:
    body = client.get(f"/api/v1/followups/{fid}", headers=auth(key)).get_json()
    return dt.datetime.fromisoformat(body["recheck_deadline"])


@pytest.mark.parametrize("door", ["http", "mqtt"])
def test_recheck_window_edges(
    clock: MovableClock, client: FlaskClient, sessions: sessionmaker[Session], door: str
) -> None:
    keys = setup_market(sessions)
    body = posted("g-1", 72.0, source="regulator")
    if door == "http":
        assert post(client, keys.lab, body).status_code == 201
    else:
        mqtt(sessions, result("g-1", 72.0, source="regulator"))
    followup = followup_of(sessions, "g-1")
    assert (followup.state, followup.path) == ("recheck_window", "recheck")
    deadline = deadline_of(client, keys.lab, followup.id)
    assert deadline - followup.opened_at == dt.timedelta(hours=4)
    # repeats of a regulator's test (复测) are recorded but decide nothing: 复检 does
    mqtt(sessions, result("g-2", 10.0, retest_of="g-1"), result("g-3", 11.0, retest_of="g-1"))
    assert followup_of(sessions, "g-1").state == "recheck_window"

    clock.set(deadline)
    page = client.get(f"/api/v1/followups/{followup.id}", headers=auth(keys.lab)).get_json()
    assert "request_recheck" in page["allowed_actions"]
    assert "accept_result" not in page["allowed_actions"]
    assert [r["code"] for r in page["rules"]] == ["suspend", "recheck", "recheck_start"]
    assert "第八十八条" in page["rules"][1]["source"]
    early = act(client, keys.regulator, followup.id, "accept_result")
    assert early.status_code == 409
    assert "may ask for 复检" in early.get_json()["detail"]

    clock.set(deadline + dt.timedelta(microseconds=1))
    late = act(client, keys.lab, followup.id, "request_recheck")
    assert late.status_code == 409
    assert "window closed" in late.get_json()["detail"]
    accepted = act(client, keys.regulator, followup.id, "accept_result")
    assert accepted.status_code == 200
    assert accepted.get_json()["state"] == "confirmed"


def test_recheck_in_time_goes_to_a_lab_not_a_rapid_method(
    clock: MovableClock, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    assert post(client, keys.lab, posted("g-1", 72.0, source="regulator")).status_code == 201
    fid = followup_of(sessions, "g-1").id
    clock.set(deadline_of(client, keys.lab, fid) - dt.timedelta(seconds=1))
    asked = act(client, keys.lab, fid, "request_recheck", actor_name="摊主 李四")
    assert asked.get_json()["state"] == "rechecking"
    rapid = {**LAB, "method": "胶体金快速检测卡"}
    refused = act(client, keys.regulator, fid, "lab_result", lab_result="negative", **rapid)
    assert refused.status_code == 422
    assert "第八十八条" in refused.get_json()["errors"][0]["message"]
    done = act(client, keys.regulator, fid, "lab_result", lab_result="negative", **LAB)
    assert done.get_json()["state"] == "cleared"


def test_source_is_optional_and_checked(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    assert post(client, keys.lab, posted("m-1", 10.0)).status_code == 201  # no source: market
    with sessions() as session:
        stored = session.scalars(select(RapidTestResult)).one()
    assert stored.tested_by == "market"
    bad = post(client, keys.lab, posted("m-2", 10.0, source="police"))
    assert bad.status_code == 422
    assert "source" in str(bad.get_json())
    stats = mqtt(sessions, result("m-3", 10.0, source="police"))
    assert stats.dead_letters == 1
    with sessions() as session:
        reason = session.scalars(select(DeadLetter.reason)).one()
    assert "source" in reason
    assert count(sessions, RapidTestResult) == 1  # nothing half-stored
    listed = client.get("/api/v1/sites/m-300/results").get_json()["results"]
    assert [r["source"] for r in listed] == ["market"]


def banned_case(client: FlaskClient, sessions: sessionmaker[Session]) -> tuple[Any, int]:
    keys = setup_market(sessions)
    positive = posted("b-1", None, item="clenbuterol", unit=None, verdict="positive", sample=MEAT)
    assert post(client, keys.lab, positive).status_code == 201
    return keys, followup_of(sessions, "b-1").id


def test_banned_substance_is_sealed_and_referred(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys, fid = banned_case(client, sessions)
    case = client.get(f"/api/v1/followups/{fid}", headers=auth(keys.regulator)).get_json()
    assert (case["state"], case["path"]) == ("sealed", "banned")
    assert "整顿办函〔2010〕50号" in case["rules"][0]["source"]
    with sessions() as session:
        alert = session.scalars(select(FollowupAlert)).one()
    assert alert.kind == "case_sealed"  # the regulator hears of it at once
    # two negative repeats do not clear a banned substance
    for rid in ("b-2", "b-3"):
        repeat = posted(rid, None, item="clenbuterol", unit=None, verdict="negative")
        post(client, keys.lab, repeat | {"retest_of": "b-1", "sample": MEAT})
    assert followup_of(sessions, "b-1").state == "sealed"
    assert act(client, keys.lab, fid, "dispose", **DISPOSAL).status_code == 409
    kit = {**LAB, "method": "瘦肉精胶体金试纸"}
    assert (
        act(client, keys.regulator, fid, "lab_result", lab_result="positive", **kit).status_code
        == 422
    )
    legal = {**LAB, "method": "GB/T 22286-2008"}
    confirmed = act(client, keys.regulator, fid, "lab_result", lab_result="positive", **legal)
    assert confirmed.get_json()["state"] == "confirmed"
    assert (
        act(
            client, keys.lab, fid, "dispose", **DISPOSAL | {"disposal_method": "harmless"}
        ).status_code
        == 200
    )
    assert act(client, keys.lab, fid, "report", **REPORT).status_code == 200
    unreferred = act(client, keys.regulator, fid, "close")
    assert unreferred.status_code == 409
    assert "行刑衔接" in unreferred.get_json()["detail"]
    link = {"link": "https://xingxing.example.gov.cn/case/XH-YX-2026-03"}
    referred = act(client, keys.regulator, fid, "refer", **REFERRAL, **link)
    assert referred.get_json()["referral"]["referral_no"] == REFERRAL["referral_no"]
    closed = act(client, keys.regulator, fid, "close")
    assert closed.get_json()["state"] == "closed"
    assert closed.get_json()["disposal_detail"]["method_zh"] == "无害化处理"


def test_refer_is_for_banned_substances(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    post(client, keys.lab, posted("r-1", 72.0))
    fid = followup_of(sessions).id
    refused = act(client, keys.regulator, fid, "refer", **REFERRAL)
    assert refused.status_code == 409
    assert "banned" in refused.get_json()["detail"]


def test_tracing_upstream_notifies_the_origin_agriculture_department(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys, fid = banned_case(client, sessions)
    nowhere = act(client, keys.lab, fid, "trace_upstream")
    assert nowhere.status_code == 422  # no register row with a 产地, none given
    assert "origin" in nowhere.get_json()["detail"]
    traced = act(client, keys.lab, fid, "trace_upstream", origin="河南省平顶山市郏县")
    assert traced.status_code == 200
    notice = traced.get_json()["agri_notice"]
    assert notice["department"] == "河南省平顶山市郏县农业农村部门"
    with sessions() as session:
        kinds = session.scalars(select(FollowupAlert.kind).order_by(FollowupAlert.id)).all()
    assert kinds == ["case_sealed", "agri_notice"]
    assert (
        traced.get_json()["events"][-1]["detail"]["agri_notice"]["origin"] == "河南省平顶山市郏县"
    )


def test_source_through_a_real_broker(
    settings: Settings, sessions: sessionmaker[Session], broker_url: str
) -> None:
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    topic = f"fangxin/v1/{site}/{rt}/result"
    messages = [
        (topic, dumps(result("old-device", 72.0))),  # a device that predates `source`
        (topic, dumps(result("by-regulator", 72.0, source="regulator"))),
        (topic, dumps(result("bad", 72.0, source="self"))),
    ]
    with running_ingester(settings, broker_url), publisher(broker_url) as client:
        publish_all(client, messages)
        ours = DeadLetter.topic == topic  # the broker is shared with other tests
        assert wait_until(lambda: count(sessions, DeadLetter, ours) >= 1, 30)
        assert wait_until(lambda: count(sessions, Followup) == 2, 30)
    with sessions() as session:
        stored = session.execute(
            select(RapidTestResult.result_id, RapidTestResult.tested_by, Followup.state)
            .join(Followup, Followup.result_id == RapidTestResult.id)
            .order_by(RapidTestResult.result_id)
        ).all()
        reasons = session.scalars(select(DeadLetter.reason).where(ours)).all()
    assert [tuple(r) for r in stored] == [
        ("by-regulator", "regulator", "recheck_window"),
        ("old-device", "market", "suspended"),
    ]
    assert reasons
    assert all("source" in reason for reason in reasons)  # a redelivery may be refused twice
