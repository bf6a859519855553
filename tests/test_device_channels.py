"""Device kind vs channel: only instruments send results, only cameras and NVRs send alarms."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.models import Alarm
from fangxin.devices.schemas import DeviceIn
from fangxin.ingest.models import SecurityEvent
from fangxin.trace.results.models import RapidTestResult
from tests.helpers import count, dumps, publish_all, publisher, running_ingester, wait_until
from tests.trace_helpers import auth, key, market, result

LOT = {"product": "菠菜", "quantity": 20, "unit": "kg", "certificate": None}


@pytest.fixture
def lab(sessions: sessionmaker[Session]) -> str:
    market(sessions)  # m-001 with instrument rt-1
    with sessions() as session:
        for device, kind in (("cam-1", "camera"), ("scale-1", "scale")):
            registry.add_device(session, DeviceIn(id=device, site="m-001", kind=kind), utcnow())
        session.commit()
    return key(sessions, "lab", site_id="m-001")


def events(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(SecurityEvent.kind, SecurityEvent.device_id, SecurityEvent.detail).order_by(
                SecurityEvent.id
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_camera_cannot_admit_a_lot_with_a_fake_negative_over_mqtt(
    client: FlaskClient,
    lab: str,
    sessions: sessionmaker[Session],
    settings: Settings,
    broker_url: str,
) -> None:
    entry = client.post("/api/v1/sites/m-001/entries", json=LOT, headers=auth(lab)).get_json()
    assert entry["status"] == "pending_test"
    alarm = {"id": "a-1", "ts": result("x", 1.0)["ts"], "type": "no_chef_hat", "confidence": 0.9}
    with running_ingester(settings, broker_url), publisher(broker_url) as mq:
        publish_all(
            mq,
            [
                ("fangxin/v1/m-001/cam-1/result", dumps(result("fake", 5.0))),
                ("fangxin/v1/m-001/rt-1/alarm", dumps(alarm)),
                ("fangxin/v1/m-001/scale-1/alarm", dumps({**alarm, "id": "a-2"})),
            ],
        )
        refused = SecurityEvent.kind == "channel_not_allowed"
        assert wait_until(lambda: count(sessions, SecurityEvent, refused) >= 3)
    assert count(sessions, RapidTestResult) == 0
    assert count(sessions, Alarm) == 0
    # the shared test broker may replay other tests' retained states (unknown devices here)
    found = [e for e in events(sessions) if e[0] == "channel_not_allowed"]
    assert [(k, d) for k, d, _ in found] == [
        ("channel_not_allowed", "cam-1"),
        ("channel_not_allowed", "rt-1"),
        ("channel_not_allowed", "scale-1"),
    ]
    assert "a camera device may not send result messages" in found[0][2]
    shown = client.get(f"/api/v1/sites/m-001/entries/{entry['id']}", headers=auth(lab))
    assert shown.get_json()["status"] == "pending_test"


def test_the_lab_door_refuses_results_of_non_instruments(
    client: FlaskClient, lab: str, sessions: sessionmaker[Session]
) -> None:
    body = {**result("fake", 5.0), "site": "m-001", "device": "cam-1"}
    response = client.post("/api/v1/results", json=body, headers=auth(lab))
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
    (outcome,) = response.get_json()["results"]
    assert outcome["kind"] == "channel_not_allowed"
    assert "a camera device may not send result messages" in outcome["error"]
    assert count(sessions, RapidTestResult) == 0
    assert [k for k, _, _ in events(sessions)] == ["channel_not_allowed"]
