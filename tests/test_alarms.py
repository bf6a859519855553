"""Alarms: AI alarms from MQTT, device alarms (offline, storage), dedupe, the workflow."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import ConfigError, Settings
from fangxin.devices.models import Alarm
from fangxin.ingest.batch import RawMessage
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink
from fangxin.service.auth import create_key
from tests.conftest import MovableClock
from tests.devices_helpers import at, beats, feed, kitchen, tick

SITE = "k-200"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def ai_alarm(alarm_id: str, kind: str = "no_chef_hat") -> bytes:
    return json.dumps(
        {"id": alarm_id, "ts": at(100).isoformat(), "type": kind, "confidence": 0.93}
    ).encode()


def alarms(sessions: sessionmaker[Session]) -> list[Alarm]:
    with sessions() as session:
        return list(session.scalars(select(Alarm).order_by(Alarm.id)))


def test_workflow_with_rectification_notice(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], clock: MovableClock
) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    feed(sessions, SITE, "cam-1", "alarm", 100, ai_alarm("a-1", "rodent"))
    feed(sessions, SITE, "cam-1", "alarm", 101, ai_alarm("a-1", "rodent"))  # redelivered
    listed = client.get("/api/v1/alarms?category=ai", headers=auth(admin_key)).get_json()
    assert len(listed) == 1
    alarm = listed[0]
    assert (alarm["type"], alarm["type_name"], alarm["status"]) == ("rodent", "鼠患", "new")
    url = f"/api/v1/alarms/{alarm['id']}/status"
    wrong = client.post(url, json={"status": "rectifying"}, headers=auth(admin_key))
    assert wrong.status_code == 409
    assert wrong.mimetype == "application/problem+json"
    assert "may move to notified, closed" in wrong.get_json()["detail"]
    clock.set(at(200))
    notified = client.post(
        url,
        json={"status": "notified", "notice_no": "新市监餐整〔2026〕17号"},
        headers=auth(admin_key),
    ).get_json()
    assert (notified["status"], notified["notice_no"]) == ("notified", "新市监餐整〔2026〕17号")
    assert dt.datetime.fromisoformat(notified["notified_at"]) == at(200)
    clock.set(at(300))
    rectifying = client.post(
        url, json={"status": "rectifying", "note": "已约谈"}, headers=auth(admin_key)
    )
    assert dt.datetime.fromisoformat(rectifying.get_json()["rectifying_at"]) == at(300)
    clock.set(at(400))
    closed = client.post(url, json={"status": "closed"}, headers=auth(admin_key)).get_json()
    assert (closed["status"], closed["resolution"], closed["note"]) == (
        "closed",
        "rectified",
        "已约谈",
    )
    steps = [closed["notified_at"], closed["rectifying_at"], closed["closed_at"]]
    assert [dt.datetime.fromisoformat(s) for s in steps] == [at(200), at(300), at(400)]
    again = client.post(url, json={"status": "notified"}, headers=auth(admin_key))
    assert again.status_code == 409
    assert (
        client.get("/api/v1/alarms?status=closed", headers=auth(admin_key)).get_json()[0]["id"]
        == alarm["id"]
    )


def test_generated_notice_number_and_false_alarm(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session]
) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    feed(sessions, SITE, "cam-1", "alarm", 100, ai_alarm("a-1"))
    feed(sessions, SITE, "cam-1", "alarm", 100, ai_alarm("a-2", "smoking"))
    first, second = alarms(sessions)
    body = client.post(
        f"/api/v1/alarms/{first.id}/status", json={"status": "notified"}, headers=auth(admin_key)
    ).get_json()
    assert body["notice_no"].startswith("ZG")
    assert body["notice_no"].endswith(f"-{first.id:06d}")
    no_reason = client.post(
        f"/api/v1/alarms/{second.id}/status", json={"status": "closed"}, headers=auth(admin_key)
    )
    assert no_reason.status_code == 409  # closing unnotified needs false_alarm
    dismissed = client.post(
        f"/api/v1/alarms/{second.id}/status",
        json={"status": "closed", "resolution": "false_alarm"},
        headers=auth(admin_key),
    ).get_json()
    assert (dismissed["status"], dismissed["resolution"], dismissed["notice_no"]) == (
        "closed",
        "false_alarm",
        None,
    )
    bad = client.post(
        f"/api/v1/alarms/{second.id}/status", json={"status": "reopened"}, headers=auth(admin_key)
    )
    assert bad.status_code == 422


def test_district_scope_on_alarms(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"], district="新华区")
    kitchen(sessions, "k-201", ["cam-2"], district="湛河区")
    feed(sessions, SITE, "cam-1", "alarm", 100, ai_alarm("a-1"))
    feed(sessions, "k-201", "cam-2", "alarm", 100, ai_alarm("a-1"))
    with sessions() as session:
        key = create_key(session, "regulator", district="新华区")
        session.commit()
    listed = client.get("/api/v1/alarms", headers=auth(key)).get_json()
    assert [a["district"] for a in listed] == ["新华区"]
    other = next(a for a in alarms(sessions) if a.site_id == "k-201")
    assert client.get(f"/api/v1/alarms/{other.id}", headers=auth(key)).status_code == 404
    response = client.post(
        f"/api/v1/alarms/{other.id}/status", json={"status": "notified"}, headers=auth(key)
    )
    assert response.status_code == 404
    assert client.get("/api/v1/alarms?district=湛河区", headers=auth(key)).status_code == 403


def test_offline_alarm_raised_once_and_cleared(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    beats(sessions, SITE, "cam-1", [0, 60])
    tick(sessions, 300, alarm_after_s=600)  # offline since 120
    tick(sessions, 700, alarm_after_s=600)  # 580 s offline: not yet
    assert alarms(sessions) == []
    tick(sessions, 721, alarm_after_s=600)
    tick(sessions, 800, alarm_after_s=600)  # no second alarm for the same outage
    (alarm,) = alarms(sessions)
    assert (alarm.type, alarm.ts, alarm.cleared_at, alarm.status) == (
        "offline",
        at(120),
        None,
        "new",
    )
    beats(sessions, SITE, "cam-1", [900])
    (alarm,) = alarms(sessions)
    assert alarm.cleared_at == at(900)


def test_never_connected_device_raises_no_offline_alarm(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1", "cam-2"])  # registered at -1 h
    beats(sessions, SITE, "cam-2", [-3000])  # cam-2 worked once, then went silent
    tick(sessions, 0, alarm_after_s=1800)
    (alarm,) = alarms(sessions)  # cam-1 was never installed: not an incident
    assert (alarm.device_id, alarm.type, alarm.ts) == ("cam-2", "offline", at(-2940))


def test_device_alarms_tamper_and_storage(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    feed(sessions, SITE, "cam-1", "alarm", 100, ai_alarm("t-1", "occlusion"))
    pipeline = Pipeline(SqlSink(), storage_low_gb=20.0)
    topic = f"fangxin/v1/{SITE}/cam-1/status"

    def status(seconds: int, free: float) -> None:
        body = json.dumps({"ts": at(seconds).isoformat(), "storage_free_gb": free}).encode()
        with sessions.begin() as session:
            pipeline.process(session, [RawMessage(topic, body, at(seconds))])

    status(200, 500.0)
    status(260, 12.5)
    status(320, 11.0)  # still low: the open alarm covers it
    low = [a for a in alarms(sessions) if a.type == "storage_low"]
    assert len(low) == 1
    assert low[0].extra == {"storage_free_gb": 12.5, "threshold_gb": 20.0}
    status(380, 300.0)
    status(440, 5.0)  # cleared, then low again: a new alarm
    low = [a for a in alarms(sessions) if a.type == "storage_low"]
    assert [a.cleared_at for a in low] == [at(380), None]
    assert {a.type for a in alarms(sessions)} == {"occlusion", "storage_low"}


def test_alarm_thresholds_from_the_environment() -> None:
    defaults = Settings.from_env({})
    assert (defaults.offline_alarm_after_s, defaults.storage_low_gb) == (1800.0, 20.0)
    env = {"FANGXIN_OFFLINE_ALARM_AFTER_S": "600", "FANGXIN_STORAGE_LOW_GB": "50"}
    custom = Settings.from_env(env)
    assert (custom.offline_alarm_after_s, custom.storage_low_gb) == (600.0, 50.0)
    with pytest.raises(ConfigError, match="must be a number"):
        Settings.from_env({"FANGXIN_STORAGE_LOW_GB": "lots"})
