"""Follow-up of positives: retests, the case workflow, legal and illegal transitions, the audit."""

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


LAB_REPORT = {"lab_name": "市食品检验所", "report_no": "SJ2026-1129-07"}


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
    mqtt(sessions, result("r-1a", 68.0, retest_of="r-1", sample=sample))  # same instrument
    assert followup_of(sessions).state == "retest_pending"
    second = posted("r-1b", 66.0, device=RT2, retest_of="r-1", sample=sample)
    assert post(client, keys.lab, second).status_code == 201  # another instrument, over HTTP
    return keys, fid


def test_positive_retests_case_to_closure(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys, fid = confirmed_case(client, sessions)
    case = client.get(f"/api/v1/followups/{fid}", headers=auth(keys.lab)).get_json()
    assert (case["state"], case["retests"]) == ("confirmed", 2)
    assert [r["id"] for r in case["retest_results"]] == ["r-1a", "r-1b"]
    assert case["allowed_actions"] == ["stop_sale", "lab_confirm", "trace_upstream", "notify"]
    assert case["notified_at"] is not None
    with sessions() as session:
        alert = session.scalars(select(FollowupAlert)).one()
    assert (
        alert.title
        == "测试市场 A-12 摊位 豇豆 有机磷和氨基甲酸酯类农药残留（酶抑制率法） 复检确认阳性"
    )

    steps = [
        ("stop_sale", {"actor_name": "张三"}, "sale_stopped"),
        ("seal", {}, "sealed"),
        ("lab_confirm", LAB_REPORT | {"lab_result": "positive"}, "sealed"),
        ("trace_upstream", {"issuer": "郏县绿源蔬菜合作社"}, "sealed"),
        ("destroy", {"note": "监督销毁"}, "destroyed"),
        ("close", {}, "closed"),
    ]
    for action, extra, state in steps:
        by_regulator = action in ("lab_confirm", "close")
        response = act(client, keys.regulator if by_regulator else keys.lab, fid, action, **extra)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["state"] == state
    done = response.get_json()
    assert (done["disposal"], done["lab_result"]) == ("destroy", "positive")
    assert (done["certificate"], done["upstream_issuer"]) == (
        "HGZ20261129-000007",
        "郏县绿源蔬菜合作社",
    )
    assert done["allowed_actions"] == []
    events = done["events"]
    assert [e["action"] for e in events] == [
        "open",
        "retest",
        "retest",
        "confirm",
        "notify",
        "stop_sale",
        "seal",
        "lab_confirm",
        "trace_upstream",
        "destroy",
        "close",
    ]
    assert all(e["at"] and e["actor"] for e in events)
    assert events[0]["actor"] == "device:rt-300"
    assert events[2]["actor"] == f"device:{RT2}"
    assert events[3]["actor"] == "system"
    assert events[5]["actor"].startswith("lab#")
    assert events[5]["actor"].endswith(" 张三")
    assert events[-1]["actor"].startswith("regulator#")
    assert events[7]["actor"].startswith("regulator#")
    assert events[7]["detail"]["report_no"] == LAB_REPORT["report_no"]
    assert [(e["from_state"], e["to_state"]) for e in events[5:7]] == [
        ("confirmed", "sale_stopped"),
        ("sale_stopped", "sealed"),
    ]


def test_illegal_transitions_answer_409(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys, fid = confirmed_case(client, sessions)
    early = act(client, keys.lab, fid, "destroy")
    assert early.status_code == 409
    assert early.mimetype == "application/problem+json"
    problem = early.get_json()
    assert problem["title"] == "Illegal transition"
    assert problem["state"] == "confirmed"
    assert "stop_sale" in problem["allowed_actions"]
    assert act(client, keys.regulator, fid, "close").status_code == 409
    assert act(client, keys.lab, fid, "fly").status_code == 422
    assert act(client, keys.lab, fid, "lab_confirm").status_code == 422  # lab_result missing
    no_report = act(client, keys.regulator, fid, "lab_confirm", lab_result="negative")
    assert no_report.status_code == 422  # a lab's verdict needs its report
    assert "report_no" in no_report.get_json()["errors"][0]["message"]
    with sessions() as session:
        actions = session.scalars(
            select(FollowupEvent.action).where(FollowupEvent.followup_id == fid)
        ).all()
    assert "destroy" not in actions  # a refused step leaves no trace in the audit


def test_negative_retest_clears(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    keys = setup_market(sessions)
    post(client, keys.lab, posted("r-1", 55.0))
    post(client, keys.lab, posted("r-2", 12.0, retest_of="r-1"))
    followup = followup_of(sessions)
    assert (followup.state, followup.retests) == ("cleared", 1)
    refused = act(client, keys.lab, followup.id, "stop_sale")
    assert refused.status_code == 409
    assert refused.get_json()["allowed_actions"] == []
    # a late retest is linked and audited, the decision stands
    post(client, keys.lab, posted("r-3", 70.0, retest_of="r-1"))
    assert (followup_of(sessions).state, followup_of(sessions).retests) == ("cleared", 2)
    assert count(sessions, FollowupAlert) == 0


def test_suspect_retest_does_not_clear(sessions: sessionmaker[Session]) -> None:
    setup_market(sessions)
    mqtt(sessions, result("r-1", 51.0))
    mqtt(sessions, result("r-2", 45.0, retest_of="r-1"))
    assert followup_of(sessions).state == "retest_pending"
    mqtt(sessions, result("r-3", 60.0, retest_of="r-2"))  # naming the first retest also links
    assert followup_of(sessions).state == "confirmed"


def test_redelivered_retests_are_counted_once(sessions: sessionmaker[Session]) -> None:
    setup_market(sessions)
    first, retest = result("r-1", 51.0), result("r-2", 61.0, retest_of="r-1")
    for _ in range(3):
        mqtt(sessions, first, retest)
    followup = followup_of(sessions)
    assert (followup.state, followup.retests) == ("retest_pending", 1)
    assert count(sessions, FollowupEvent) == 2  # open, retest
    assert count(sessions, Followup) == 1


def test_lab_overturns_rapid_test(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    keys, fid = confirmed_case(client, sessions)
    assert act(client, keys.regulator, fid, "close").status_code == 409
    overturn = LAB_REPORT | {"lab_result": "negative"}
    assert act(client, keys.regulator, fid, "lab_confirm", **overturn).status_code == 200
    closed = act(client, keys.regulator, fid, "close")
    assert closed.status_code == 200
    assert closed.get_json()["state"] == "closed"


def test_market_lab_cannot_overturn_or_close_its_own_positive(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    """§8: the market's lab key records a negative 'lab' verdict of its choosing, then closes."""
    keys, fid = confirmed_case(client, sessions)
    before = client.get(f"/api/v1/followups/{fid}", headers=auth(keys.regulator)).get_json()
    overturn = act(client, keys.lab, fid, "lab_confirm", lab_result="negative", **LAB_REPORT)
    close = act(client, keys.lab, fid, "close")
    for refused, action in ((overturn, "lab_confirm"), (close, "close")):
        assert refused.status_code == 403
        assert refused.mimetype == "application/problem+json"
        problem = refused.get_json()
        assert problem["action"] == action
        assert "regulator" in problem["detail"]
    after = client.get(f"/api/v1/followups/{fid}", headers=auth(keys.regulator)).get_json()
    assert after == before  # same state, no lab result, no new event
    assert (after["state"], after["lab_result"], after["closed_at"]) == ("confirmed", None, None)


def test_scopes(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    keys, fid = confirmed_case(client, sessions)
    with sessions() as session:
        other_lab = create_key(session, "lab", site_id="m-elsewhere")
        other_district = create_key(session, "regulator", district="卫东区")
        session.commit()
    assert client.get(f"/api/v1/followups/{fid}", headers=auth(other_lab)).status_code == 403
    assert act(client, other_district, fid, "stop_sale").status_code == 403
    listed = client.get("/api/v1/followups?open=1", headers=auth(keys.regulator)).get_json()
    assert [(f["id"], f["state"]) for f in listed] == [(fid, "confirmed")]
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
