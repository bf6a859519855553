"""The dashboard's follow-up page: rules with sources, steps as forms, refusals shown, scope."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.trace.results.followup_models import Followup, FollowupEvent
from fangxin.trace.results.models import RapidTestResult
from tests.pages_helpers import TOKEN, login, seed_city
from tests.trace_helpers import post_results, result


def case_id(sessions: sessionmaker[Session], rid: str) -> int:
    with sessions() as session:
        found = session.scalar(
            select(Followup.id)
            .join(RapidTestResult, RapidTestResult.id == Followup.result_id)
            .where(RapidTestResult.result_id == rid)
        )
    assert found is not None
    return found


def form_post(client: FlaskClient, fid: int, **fields: str) -> tuple[int, str]:
    page = client.get(f"/followups/{fid}").get_data(as_text=True)
    token = TOKEN.search(page)
    assert token is not None
    response = client.post(f"/followups/{fid}/act", data={"csrf_token": token[1], **fields})
    return response.status_code, response.get_data(as_text=True)


def test_page_refuses_with_the_reason_and_changes_nothing(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    seed_city(sessions)
    post_results(
        sessions, [result("r-1a", 66.0, retest_of="r-1"), result("r-1b", 71.0, retest_of="r-1")]
    )
    fid = case_id(sessions, "r-1")
    assert login(client, "xinhua") == 302
    assert f'href="/followups/{fid}"' in client.get("/sites/m-001").get_data(as_text=True)
    html = client.get(f"/followups/{fid}").get_data(as_text=True)
    assert "确认不合格，待处置" in html
    assert re.search(r"依据：《食用农产品市场销售质量安全监督管理办法》.*（待核实）", html)
    status, body = form_post(client, fid, action="dispose", disposal_method="destroy")
    assert status == 422
    assert "witness" in body
    status, body = form_post(client, fid, action="return")
    assert status == 422
    assert "退货" in body
    status, body = form_post(client, fid, action="close")
    assert status == 409
    assert "not allowed" in body
    with sessions() as session:
        actions = session.scalars(
            select(FollowupEvent.action).where(FollowupEvent.followup_id == fid)
        ).all()
    assert actions == ["open", "retest", "retest", "confirm", "notify"]
    status, _ = form_post(
        client, fid, action="dispose", disposal_method="destroy", witness="王五", record_no="XH-1"
    )
    assert status == 303
    assert "已销毁或无害化处理" in client.get(f"/followups/{fid}").get_data(as_text=True)


def test_a_district_sees_only_its_cases(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    seed_city(sessions)
    post_results(sessions, [result("r-9", 70.0)], "m-002", "rt-2")
    other = case_id(sessions, "r-9")
    assert login(client, "xinhua") == 302
    assert client.get(f"/followups/{other}").status_code == 404
    token = TOKEN.search(
        client.get(f"/followups/{case_id(sessions, 'r-1')}").get_data(as_text=True)
    )
    assert token is not None
    refused = client.post(
        f"/followups/{other}/act", data={"csrf_token": token[1], "action": "notify"}
    )
    assert refused.status_code == 404
    assert client.get("/followups/999999").status_code == 404
