"""Follow-up of a market self-test's positive: 暂停销售, two 复测, 送检, disposal, the audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.service.auth import create_key
from fangxin.trace.results.followup_models import Followup, FollowupAlert, FollowupEvent
from tests.helpers import count, result
from tests.results_helpers import (  # noqa: F401 - fixtures
    RT2,
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


def followup_of(sessions: sessionmaker[Session], result_id: str = "r-1") -> Followup:
    with sessions() as session:
        from fangxin.trace.results.models import RapidTestResult

        rid = session.scalar(
            select(RapidTestResult.id).where(RapidTestResult.result_id == result_id)
        )
        found = session.scalars(select(Followup).where(Followup.result_id == rid)).one()
        session.expunge(found)
        return found


def act(client: FlaskClient, key: str, fid: int, action: str, **extra: Any) -> Any:
    return client.post(
        f"/api/v1/followups/{fid}/actions", json={"action": action, **extra}, headers=auth(key)
    )


DISPOSAL = {
    "disposal_method": "destroy",
    "witness": "新华区市场监管所 王五",
    "record_no": "XH-0007",
}
REPORT = {"office": "新华区市场监督管理局", "report_no": "XHSJ-2026-118"}
LAB = {
    "lab_name": "市食品检验所（CMA）",
    "report_no": "SJ2026-1129-07",
    "method": "GB 23200.113-2018",
}


def confirmed_case(client: FlaskClient, sessions: sessionmaker[Session]) -> tuple[Market, int]:
    keys = setup_market(sessions)
    sample = {
        "name": "豇豆",
        "category": "蔬菜",
        "stall": "A-12",
        "certificate": "HGZ20261129-000007",
    }
    assert post(client, keys.lab, posted("r-1", 72.0, sample=sample)).status_code == 201
    fid = followup_of(sessions).id
    assert followup_of(sessions).state == "suspended"  # 暂停销售 at once
    mqtt(sessions, result("r-1a", 68.0, retest_of="r-1", sample=sample))  # same instrument
    assert followup_of(sessions).state == "suspended"  # one repeat decides nothing
    second = posted("r-1b", 66.0, device=RT2, retest_of="r-1", sample=sample)
    assert post(client, keys.lab, second).status_code == 201  # another instrument, over HTTP
    return keys, fid


def test_positive_is_suspended_at_once_then_repeats_confirm_and_it_is_disposed(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys, fid = confirmed_case(client, sessions)
    case = client.get(f"/api/v1/followups/{fid}", headers=auth(keys.lab)).get_json()
    assert (case["state"], case["retests"], case["path"]) == ("confirmed", 2, "repeat")
    assert [r["id"] for r in case["retest_results"]] == ["r-1a", "r-1b"]
    assert case["allowed_actions"] == ["dispose", "report", "trace_upstream", "notify"]
    assert [r["code"] for r in case["rules"]] == ["disposal"]
    assert "不得退货" in case["rules"][0]["text_zh"]
    assert case["notified_at"] is not None
    with sessions() as session:
        alert = session.scalars(select(FollowupAlert)).one()
    assert alert.title == (
        "测试市场 A-12 摊位 豇豆 有机磷和氨基甲酸酯类农药残留（酶抑制率法） 确认不合格，待处置"
    )
    steps = [
        ("dispose", DISPOSAL | {"actor_name": "张三"}, "disposed"),
        ("report", REPORT, "disposed"),
        ("close", {}, "closed"),
    ]
    for action, extra, state in steps:
        key = keys.regulator if action == "close" else keys.lab
        response = act(client, key, fid, action, **extra)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["state"] == state
    done = response.get_json()
    assert done["disposal"] == "destroy"
    assert done["disposal_detail"]["witness"] == DISPOSAL["witness"]
    assert done["report_detail"] == REPORT
    assert done["allowed_actions"] == []
    events = done["events"]
    assert [e["action"] for e in events] == [
        "open",
        "retest",
        "retest",
        "confirm",
        "notify",
        "dispose",
        "report",
        "close",
    ]
    assert events[0]["actor"] == "device:rt-300"
    assert events[0]["to_state"] == "suspended"
    assert events[2]["actor"] == f"device:{RT2}"
    assert events[3]["actor"] == "system"
    assert events[3]["detail"]["rule"] == "repeats"
    assert events[5]["actor"].startswith("lab#")
    assert events[5]["actor"].endswith(" 张三")
    assert events[5]["detail"]["record_no"] == "XH-0007"
    assert events[-1]["actor"].startswith("regulator#")


def test_return_to_supplier_is_refused(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys, fid = confirmed_case(client, sessions)
    refused = act(client, keys.lab, fid, "return")
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert "退货" in refused.get_json()["errors"][0]["message"]
    assert act(client, keys.lab, fid, "stop_sale").status_code == 422  # sale is already stopped
    unwitnessed = act(client, keys.lab, fid, "dispose", disposal_method="destroy")
    assert unwitnessed.status_code == 422
    assert "witness" in unwitnessed.get_json()["errors"][0]["message"]
    assert act(client, keys.lab, fid, "dispose", **DISPOSAL).status_code == 200
    early = act(client, keys.regulator, fid, "close")  # not reported to the county office yet
    assert early.status_code == 409
    assert "report" in early.get_json()["detail"]
    with sessions() as session:
        actions = session.scalars(
            select(FollowupEvent.action).where(FollowupEvent.followup_id == fid)
        ).all()
    assert "close" not in actions  # a refused step leaves no trace in the audit


def test_illegal_transitions_answer_409(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys, fid = confirmed_case(client, sessions)
    early = act(client, keys.regulator, fid, "close")
    assert early.status_code == 409
    problem = early.get_json()
    assert problem["title"] == "Illegal transition"
    assert problem["state"] == "confirmed"
    assert "dispose" in problem["allowed_actions"]
    assert act(client, keys.lab, fid, "request_recheck").status_code == 409  # self-test: 复测
    assert act(client, keys.lab, fid, "fly").status_code == 422
    assert act(client, keys.regulator, fid, "lab_result").status_code == 422  # no report


@pytest.mark.parametrize(
    ("first", "second", "state"),
    [
        (12.0, 20.0, "cleared"),  # two negatives
        (12.0, 60.0, "lab_pending"),  # mixed: 送检
        (45.0, 12.0, "lab_pending"),  # a suspect repeat is no negative
        (45.0, 60.0, "confirmed"),
    ],
)
def test_two_repeats_decide(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    first: float,
    second: float,
    state: str,
) -> None:
    keys = setup_market(sessions)
    post(client, keys.lab, posted("r-1", 55.0))
    post(client, keys.lab, posted("r-2", first, retest_of="r-1"))
    assert followup_of(sessions).state == "suspended"  # one negative repeat does not clear
    mqtt(sessions, result("r-3", second, retest_of="r-2"))  # naming the first repeat also links
    followup = followup_of(sessions)
    assert (followup.state, followup.retests) == (state, 2)
    assert count(sessions, FollowupAlert) == (1 if state == "confirmed" else 0)
    # a late repeat is linked and audited, the decision stands
    post(client, keys.lab, posted("r-4", 70.0 if state == "cleared" else 10.0, retest_of="r-1"))
    assert (followup_of(sessions).state, followup_of(sessions).retests) == (state, 3)


def test_lab_decides_mixed_repeats(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    keys = setup_market(sessions)
    post(client, keys.lab, [posted("r-1", 55.0), posted("r-9", 66.0, sample={"name": "韭菜"})])
    post(
        client,
        keys.lab,
        [posted("r-2", 12.0, retest_of="r-1"), posted("r-3", 60.0, retest_of="r-1")],
    )
    fid = followup_of(sessions).id
    assert followup_of(sessions).state == "lab_pending"
    rapid = act(
        client,
        keys.regulator,
        fid,
        "lab_result",
        lab_result="negative",
        **LAB | {"method": "GB/T 5009.199-2003 酶抑制法"},
    )
    assert rapid.status_code == 422
    assert "rapid method" in rapid.get_json()["errors"][0]["message"]
    by_lab = act(client, keys.lab, fid, "lab_result", lab_result="negative", **LAB)
    assert by_lab.status_code == 403  # the market's lab may not decide its own positive
    cleared = act(client, keys.regulator, fid, "lab_result", lab_result="negative", **LAB)
    assert cleared.status_code == 200
    assert (cleared.get_json()["state"], cleared.get_json()["lab_result"]) == (
        "cleared",
        "negative",
    )
    assert cleared.get_json()["lab_detail"]["method"] == LAB["method"]
    # the market may also send a suspended lot straight to the lab (e.g. 韭菜, false positives)
    other = followup_of(sessions, "r-9").id
    assert act(client, keys.lab, other, "send_to_lab").get_json()["state"] == "lab_pending"
    confirmed = act(client, keys.regulator, other, "lab_result", lab_result="positive", **LAB)
    assert confirmed.get_json()["state"] == "confirmed"
    assert count(sessions, FollowupAlert) == 1


def test_redelivered_retests_are_counted_once(sessions: sessionmaker[Session]) -> None:
    setup_market(sessions)
    first, retest = result("r-1", 51.0), result("r-2", 61.0, retest_of="r-1")
    for _ in range(3):
        mqtt(sessions, first, retest)
    followup = followup_of(sessions)
    assert (followup.state, followup.retests) == ("suspended", 1)
    assert count(sessions, FollowupEvent) == 2  # open, retest
    assert count(sessions, Followup) == 1


def test_market_lab_cannot_decide_or_close_its_own_positive(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    """§8: the market's lab key records a negative 'lab' verdict of its choosing, then closes."""
    keys, fid = confirmed_case(client, sessions)
    before = client.get(f"/api/v1/followups/{fid}", headers=auth(keys.regulator)).get_json()
    overturn = act(client, keys.lab, fid, "lab_result", lab_result="negative", **LAB)
    close = act(client, keys.lab, fid, "close")
    for refused, action in ((overturn, "lab_result"), (close, "close")):
        assert refused.status_code == 403
        assert refused.mimetype == "application/problem+json"
        problem = refused.get_json()
        assert problem["action"] == action
        assert "regulator" in problem["detail"]
    after = client.get(f"/api/v1/followups/{fid}", headers=auth(keys.regulator)).get_json()
    assert after == before  # same state, no lab result, no new event


def test_scopes(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    keys, fid = confirmed_case(client, sessions)
    with sessions() as session:
        other_lab = create_key(session, "lab", site_id="m-elsewhere")
        other_district = create_key(session, "regulator", district="卫东区")
        session.commit()
    assert client.get(f"/api/v1/followups/{fid}", headers=auth(other_lab)).status_code == 403
    listed = client.get("/api/v1/followups?open=1", headers=auth(keys.regulator)).get_json()
    assert [(f["id"], f["state"]) for f in listed] == [(fid, "confirmed")]
    assert act(client, other_district, fid, "dispose", **DISPOSAL).status_code == 403
    assert client.get("/api/v1/followups", headers=auth(other_district)).get_json() == []
    alerts = client.get("/api/v1/alerts?unread=1", headers=auth(keys.regulator)).get_json()
    assert len(alerts) == 1
    assert client.get("/api/v1/alerts", headers=auth(other_district)).get_json() == []
    read = client.post(f"/api/v1/alerts/{alerts[0]['id']}/read", headers=auth(keys.regulator))
    assert read.status_code == 200
    assert client.get("/api/v1/alerts?unread=1", headers=auth(keys.regulator)).get_json() == []


def test_upstream_lookup_tolerates_a_missing_register(tmp_path: Path) -> None:
    from sqlalchemy import text

    from fangxin.db import make_engine
    from fangxin.trace.certificates.upstream import issuer_of, lookup_certificate

    engine = make_engine(f"sqlite:///{tmp_path}/register.db")
    with Session(engine) as session:
        assert lookup_certificate(session, "HGZ-1") is None  # no certificate tables at all
        session.execute(
            text(
                "CREATE TABLE certificates (id INTEGER PRIMARY KEY, number TEXT, code TEXT,"
                " subject_name TEXT, contact TEXT, status TEXT)"
            )
        )
        session.execute(
            text(
                "INSERT INTO certificates (number, code, subject_name, contact, status)"
                " VALUES ('HGZ-1', 'QRCODE1', '绿源合作社', '0375-1234567', 'valid')"
            )
        )
        found = lookup_certificate(session, "QRCODE1")
        assert found is not None
        assert issuer_of(found) == "绿源合作社（0375-1234567）"
        assert lookup_certificate(session, "HGZ-2") is None
    engine.dispose()
