"""The HTTP door for results: same model, verdicts and dedupe as MQTT; per-item outcomes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.ingest.batch import RawMessage
from fangxin.ingest.models import DeadLetter, SecurityEvent
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink
from fangxin.trace.results.followup_models import Followup
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import (
    CST,
    count,
    dumps,
    publish_all,
    publisher,
    register,
    result,
    running_ingester,
    wait_until,
)
from tests.refusals import nothing_stored, refused
from tests.results_helpers import (  # noqa: F401 - fixtures
    RT,
    RT2,
    SITE,
    auth,
    mqtt,
    post,
    posted,
    pristine_catalogue,
    seeded_catalogue,
    setup_market,
)

# Columns that depend on the door or the moment, not on the input.
DOOR_COLUMNS = {"id", "received_at", "source", "result_id"}

pytestmark = pytest.mark.usefixtures("pristine_catalogue")


def stored(sessions: sessionmaker[Session]) -> dict[str, dict[str, Any]]:
    with sessions() as session:
        rows = session.scalars(select(RapidTestResult)).all()
        return {
            r.result_id: {c.name: getattr(r, c.name) for c in RapidTestResult.__table__.columns}
            for r in rows
        }


def test_one_result_is_stored_with_a_derived_verdict(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    response = post(client, keys.lab, posted("r-1", 62.0, verdict="negative"))
    assert response.status_code == 201
    body = response.get_json()
    assert (body["stored"], body["duplicate"], body["rejected"]) == (1, 0, 0)
    assert body["results"][0] == {
        "index": 0,
        "id": "r-1",
        "device": RT,
        "status": "stored",
        "verdict": "positive",
    }
    row = stored(sessions)["r-1"]
    assert (row["verdict"], row["device_verdict"], row["verdict_mismatch"]) == (
        "positive",
        "negative",
        True,
    )
    assert row["source"] == "http"


def test_both_doors_store_the_same_record(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    common = {
        "ts": dt.datetime.now(CST).replace(microsecond=0).isoformat(),
        "sample": {"name": "韭菜", "category": "蔬菜", "stall": "A-1", "certificate": "HGZ-1"},
        "verdict": "suspect",
        "extra": {"sample_no": "S-9"},
    }
    assert post(client, keys.lab, posted("via-http", 47.5, **common)).status_code == 201
    assert mqtt(sessions, result("via-mqtt", 47.5, **common)).results == 1
    rows = stored(sessions)
    http = {k: v for k, v in rows["via-http"].items() if k not in DOOR_COLUMNS}
    over_mqtt = {k: v for k, v in rows["via-mqtt"].items() if k not in DOOR_COLUMNS}
    assert http == over_mqtt
    assert http["verdict"] == "suspect"
    assert http["false_positive_risk"] is True
    assert http["extra"] == {"sample_no": "S-9"}
    assert (rows["via-http"]["source"], rows["via-mqtt"]["source"]) == ("http", "mqtt")


def test_dedupe_across_doors(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    keys = setup_market(sessions)
    body = posted("r-1", 12.0)
    mqtt(sessions, result("r-1", 12.0, ts=body["ts"]))
    again = post(client, keys.lab, [body, posted("r-2", 13.0), posted("r-2", 13.0)])
    assert again.status_code == 201
    assert [r["status"] for r in again.get_json()["results"]] == [
        "duplicate",
        "stored",
        "duplicate",
    ]
    mqtt(sessions, result("r-2", 13.0, ts=body["ts"]))
    assert count(sessions, RapidTestResult) == 2
    assert post(client, keys.lab, body).status_code == 200  # nothing new: not 201


def test_partial_failure_names_each_item_and_stores_the_rest(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    setup_market(sessions, "m-other")
    future = (dt.datetime.now(CST) + dt.timedelta(hours=3)).isoformat()
    batch = [
        posted("ok-1", 10.0),
        posted("bad-value", "high"),
        posted("bad-item", 10.0, item="melamine"),
        posted("bad-time", 10.0, ts=future),
        posted("elsewhere", 10.0, site="m-other", device="m-other-rt"),
        posted("ok-2", 55.0, device=RT2),
        posted("orphan", 10.0, retest_of="nothing"),
    ]
    response = post(client, keys.lab, batch)
    assert response.status_code == 201
    out = response.get_json()
    assert (out["stored"], out["rejected"]) == (2, 5)
    by_id = {r["id"]: r for r in out["results"] if "id" in r}
    assert "value: Input should be a valid number" in out["results"][1]["error"]
    assert "item 'melamine' is not in the catalogue" in by_id["bad-item"]["error"]
    assert "is in the future" in out["results"][3]["error"]
    assert by_id["elsewhere"]["kind"] == "forbidden"
    assert "retest_of 'nothing' is no result of this site" in by_id["orphan"]["error"]
    assert by_id["ok-2"]["verdict"] == "positive"
    assert set(stored(sessions)) == {"ok-1", "ok-2"}
    with sessions() as session:
        event = session.scalars(select(SecurityEvent)).one()
    assert (event.kind, event.site_id) == ("key_scope", "m-other")
    assert count(sessions, DeadLetter) == 0  # the caller was told; nothing to dead-letter


def test_unknown_device_and_site_mismatch_are_security_events(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    setup_market(sessions, "m-other")
    ghost = post(client, keys.admin, posted("r-1", device="rt-ghost"))
    assert ghost.status_code == 403
    assert ghost.mimetype == "application/problem+json"
    assert "rt-ghost is not registered" in ghost.get_json()["results"][0]["error"]
    moved = post(client, keys.admin, posted("r-2", site="m-other"))
    assert moved.status_code == 403
    assert f"belongs to site {SITE}, not m-other" in moved.get_json()["results"][0]["error"]
    with sessions() as session:
        kinds = sorted(session.scalars(select(SecurityEvent.kind)))
    assert kinds == ["site_mismatch", "unknown_device"]
    assert count(sessions, RapidTestResult) == 0


def test_request_level_errors(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    keys = setup_market(sessions)
    refused(client.post("/api/v1/results", json=posted("r")), 401, "send an API key")
    wrong = client.post("/api/v1/results", json=posted("r"), headers=auth("fx_nope_nope"))
    refused(wrong, 401, "unknown or revoked API key")
    refused(post(client, keys.regulator, posted("r")), 403, "role regulator may not do this")
    refused(post(client, keys.lab, []), 422, "empty array")
    too_many = post(client, keys.lab, [posted(f"r-{i}") for i in range(1001)])
    refused(too_many, 413, "1001 results; at most 1000 a request")
    refused(
        post(client, keys.lab, posted("r"), "?format=xml"), 400, "format must be v1 or province"
    )
    not_json = client.post("/api/v1/results", data=b"{nope", headers=auth(keys.lab))
    refused(not_json, 400, "the body must be JSON")
    invalid = refused(post(client, keys.lab, posted("r", "high")), 422, "1 refused")
    assert invalid["results"][0]["kind"] == "invalid"
    assert invalid["results"][0]["error"] == "value: Input should be a valid number"
    assert (invalid["stored"], invalid["rejected"]) == (0, 1)
    # refused before anything was judged: no result, dead letter, follow-up or security event
    nothing_stored(sessions, RapidTestResult, DeadLetter, SecurityEvent, Followup)


def province(rid: str, **extra: Any) -> dict[str, Any]:
    body = {
        "userName": "T004",
        "key": "ignored",
        "instrument": "智锐达生化速测仪",
        "instrumentNo": RT,
        "mac": "00:11:22:33:44:55",
        "fTpye": "蔬菜",
        "fName": "小白菜",
        "sampleNo": "S-001",
        "checkedUnit": "C-08",
        "dataNum": rid,
        "testPro": "pesticide-ache",
        "quanOrQual": "1",
        "contents": "52.3",
        "unit": "%",
        "testResult": "不合格",
        "standardLimit": "≤50",
        "basedStandard": "GB/T 5009.199-2003",
        "testPerson": "李四",
        "testTime": dt.datetime.now(CST).strftime("%Y-%m-%d %H:%M:%S"),
    }
    body.update(extra)
    return body


def test_provincial_field_set(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    keys = setup_market(sessions)
    batch = [
        province("p-1"),
        province("p-2", testPro="亚硝酸盐", fTpye="腌渍蔬菜", contents="25", unit="mg/kg"),
        province("p-3", testPro="clenbuterol", quanOrQual="2", contents="", testResult="阴性"),
        province("p-4", testResult="maybe"),
        province("p-5", testTime="29/11/2026"),
    ]
    response = post(client, keys.lab, batch, "?format=province")
    assert response.status_code == 201
    out = response.get_json()["results"]
    assert [r["status"] for r in out] == ["stored", "stored", "stored", "rejected", "rejected"]
    assert "testResult: 'maybe'" in out[3]["error"]
    assert "testTime" in out[4]["error"]
    rows = stored(sessions)
    p1 = rows["p-1"]
    assert (p1["value"], p1["verdict"], p1["device_verdict"], p1["stall"]) == (
        52.3,
        "positive",
        "positive",
        "C-08",
    )
    assert (p1["tester"], p1["sample_name"], p1["source"]) == ("李四", "小白菜", "province")
    assert p1["extra"]["sample_no"] == "S-001"
    assert p1["extra"]["based_standard"] == "GB/T 5009.199-2003"
    assert p1["ts"].astimezone(CST).strftime("%Y-%m-%d %H:%M:%S") == batch[0]["testTime"]
    assert (rows["p-2"]["item_code"], rows["p-2"]["verdict"]) == ("nitrite", "positive")
    assert (rows["p-3"]["value"], rows["p-3"]["verdict"]) == (None, "negative")
    # the same record posted in the v1 form is a duplicate: one model behind both forms
    same = posted("p-1", 52.3, ts=p1["ts"].isoformat())
    assert post(client, keys.lab, same).get_json()["results"][0]["status"] == "duplicate"


def test_same_result_over_a_real_broker_and_http_is_stored_once(
    settings: Settings, sessions: sessionmaker[Session], broker_url: str, client: FlaskClient
) -> None:
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    setup_market(sessions, unique("m"))  # another market, another lab key
    with sessions() as session:
        from fangxin.service.auth import create_key

        lab = create_key(session, "lab", site_id=site)
        session.commit()
    bodies = [result(f"r-{i}", float(i * 10)) for i in range(6)]
    http_first = [{**b, "site": site, "device": rt} for b in bodies[:3]]
    assert post(client, lab, http_first).status_code == 201
    with running_ingester(settings, broker_url), publisher(broker_url) as mqtt_client:
        publish_all(mqtt_client, [(f"fangxin/v1/{site}/{rt}/result", dumps(b)) for b in bodies])
        assert wait_until(lambda: count(sessions, RapidTestResult) >= 6)
    later = post(client, lab, [{**b, "site": site, "device": rt} for b in bodies])
    assert [r["status"] for r in later.get_json()["results"]] == ["duplicate"] * 6
    with sessions() as session:
        rows = session.execute(select(RapidTestResult.result_id, RapidTestResult.source)).all()
    assert sorted(rows) == [(f"r-{i}", "http" if i < 3 else "mqtt") for i in range(6)]


def test_nul_is_refused_not_a_server_error(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    keys = setup_market(sessions)
    bad = posted("r-1", sample={"name": "菠\u0000菜"})
    response = post(client, keys.lab, [bad, posted("r-2")])
    assert response.status_code == 201
    assert "must not contain NUL" in response.get_json()["results"][0]["error"]
    assert client.get("/api/v1/sites/m%00/results").status_code == 400
    assert client.get("/api/v1/catalogue?x=%00").status_code == 400
    raw = RawMessage(f"fangxin/v1/{SITE}/{RT}/result", b"\x00", dt.datetime.now(dt.UTC))
    with sessions.begin() as session:
        assert Pipeline(SqlSink()).process(session, [raw]).dead_letters == 1
    with sessions() as session:
        dead = session.scalars(select(DeadLetter)).one()
    assert "\x00" not in dead.payload
