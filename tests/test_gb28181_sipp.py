"""The GB/T 28181 door against a real SIP peer (SIPp): register, keepalive, catalog, unregister."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import utcnow
from fangxin.devices.connectivity import start_offline
from fangxin.devices.liveness import record_activity
from fangxin.devices.models import ConnectivityEvent, Device, IngesterRun, SecurityEvent
from fangxin.devices.sweep import sweep
from fangxin.service.users import add_user
from tests.conftest import MovableClock
from tests.pages_helpers import PASSWORD, login
from tests.sip_helpers import (
    CAMERA,
    CH1,
    CH2,
    NVR,
    Door,
    register_devices,
    sipp,
    start_door,
    wait_for,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (apt sip-tester) not installed"),
    pytest.mark.timeout(120),
]


@pytest.fixture
def door(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[Door]:
    passwords = register_devices(sessions, interval_s=1)
    running = start_door(settings, sessions, min_expires=1)
    yield Door(running, passwords)
    running.stop()


def _device(sessions: sessionmaker[Session], device_id: str) -> Device | None:
    with sessions() as session:
        return session.get(Device, device_id)


def _states(sessions: sessionmaker[Session], device_id: str) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(ConnectivityEvent.state, ConnectivityEvent.cause)
            .where(ConnectivityEvent.device_id == device_id)
            .order_by(ConnectivityEvent.at, ConnectivityEvent.id)
        )
        return [(r.state, r.cause) for r in rows]


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_nvr_registers_keeps_alive_lists_channels_and_unregisters(
    door: Door, sessions: sessionmaker[Session], transport: str
) -> None:
    done = sipp(
        "register.xml",
        door.port,
        NVR,
        door.passwords[NVR],
        transport=transport,
        ooc="catalog_ooc.xml",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    counters = door.running.gateway.counters
    wait_for(lambda: counters["registered"] == 1 and counters["keepalive"] == 3)
    wait_for(lambda: (d := _device(sessions, "nvr-1")) is not None and d.conn_state == "online")
    nvr = _device(sessions, "nvr-1")
    assert nvr is not None
    assert nvr.sip_contact
    assert nvr.sip_expires_at
    # The Catalog answer's two channels are cameras of the NVR's site; ON online, OFF offline.
    wait_for(lambda: _device(sessions, CH2) is not None and _device(sessions, CH1) is not None)
    ch1, ch2 = _device(sessions, CH1), _device(sessions, CH2)
    assert ch1 is not None
    assert ch2 is not None
    assert (ch1.site_id, ch1.kind, ch1.sip_parent, ch1.gb_id) == ("k-1", "camera", "nvr-1", CH1)
    wait_for(lambda: (c := _device(sessions, CH1)) is not None and c.conn_state == "online")
    assert ch2.conn_state != "online"
    done = sipp("unregister.xml", door.port, NVR, door.passwords[NVR], transport=transport)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # Expires: 0 puts the NVR (and its live channels) offline at once.
    wait_for(lambda: (d := _device(sessions, "nvr-1")) is not None and d.conn_state == "offline")
    assert _states(sessions, "nvr-1")[-2:] == [("online", "message"), ("offline", "lwt")]
    wait_for(lambda: (c := _device(sessions, CH1)) is not None and c.conn_state == "offline")
    nvr = _device(sessions, "nvr-1")
    assert nvr is not None
    assert nvr.sip_contact is None


def test_camera_falls_silent_and_goes_offline_after_three_intervals(
    door: Door, sessions: sessionmaker[Session]
) -> None:
    done = sipp("register.xml", door.port, CAMERA, door.passwords[CAMERA])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wait_for(lambda: (d := _device(sessions, "cam-1")) is not None and d.conn_state == "online")
    # interval 1 s: silent for 3 s means offline, the outage starting one interval after the last
    wait_for(
        lambda: (d := _device(sessions, "cam-1")) is not None and d.conn_state == "offline", 10
    )
    with sessions() as session:
        last = session.scalars(
            select(ConnectivityEvent)
            .where(ConnectivityEvent.device_id == "cam-1")
            .order_by(ConnectivityEvent.at.desc())
        ).first()
        cam = session.get(Device, "cam-1")
        assert last is not None
        assert cam is not None
        assert cam.last_seen_at is not None
        assert (last.state, last.cause) == ("offline", "timeout")
        assert abs((last.at - cam.last_seen_at).total_seconds() - 1.0) < 0.01


def test_wrong_password_is_refused_with_a_security_event(
    door: Door, sessions: sessionmaker[Session]
) -> None:
    done = sipp("refused.xml", door.port, CAMERA, "wrong-password")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wait_for(lambda: door.running.gateway.counters["sip_auth_failed"] == 1)
    wait_for(lambda: _kinds(sessions) == ["sip_auth_failed"])
    device = _device(sessions, "cam-1")
    assert device is not None
    assert device.conn_state == "offline"
    assert device.sip_contact is None


def test_unknown_device_is_refused_with_a_security_event(
    door: Door, sessions: sessionmaker[Session]
) -> None:
    done = sipp("refused.xml", door.port, "41040200001329999999", "whatever")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wait_for(lambda: _kinds(sessions) == ["sip_unknown_device"])


def _kinds(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(SecurityEvent.kind).order_by(SecurityEvent.id)))


PERIODS = re.compile(r'<table id="periods">.*?<tbody>(.*?)</tbody>', re.S)
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)


def test_uptime_of_a_gb28181_camera_reads_like_an_mqtt_one(
    door: Door,
    sessions: sessionmaker[Session],
    client: FlaskClient,
    admin_key: str,
    clock: MovableClock,
) -> None:
    with sessions() as session:  # an MQTT camera of the same site, registered at the same time
        cam = session.get(Device, "cam-1")
        assert cam is not None
        session.add(
            Device(
                id="cam-m", site_id="k-1", kind="camera", interval_s=1, created_at=cam.created_at
            )
        )
        session.flush()
        start_offline(session, "cam-m", cam.created_at, "registered")
        session.commit()
    done = sipp("register.xml", door.port, CAMERA, door.passwords[CAMERA])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wait_for(
        lambda: (d := _device(sessions, "cam-1")) is not None and d.conn_state == "offline", 10
    )
    # The MQTT camera's heartbeats arrive at the same receive times as the SIP keepalives.
    with sessions() as session:
        times = session.scalars(
            select(ConnectivityEvent.at).where(
                ConnectivityEvent.device_id == "cam-1", ConnectivityEvent.state == "online"
            )
        ).all()
        cam = session.get(Device, "cam-1")
        assert cam is not None
        assert cam.last_seen_at is not None
        for at in [*times, cam.last_seen_at]:
            record_activity(session, {"cam-m": at}, {}, {})
        sweep(session, cam.last_seen_at + dt.timedelta(seconds=5), dt.timedelta(hours=1))
        # ... observed by an MQTT ingester exactly when the gateway observed (doors apart).
        for run in session.scalars(select(IngesterRun).where(IngesterRun.door == "sip")).all():
            session.add(
                IngesterRun(
                    client_id="ingester",
                    door="mqtt",
                    started_at=run.started_at,
                    last_alive_at=run.last_alive_at,
                    ended_at=run.ended_at,
                )
            )
        session.commit()
    # Both reports are judged at one instant: the open outage would otherwise grow between the
    # two requests by however long the machine takes between them.
    clock.set(utcnow())
    headers = {"Authorization": f"Bearer {admin_key}"}
    today = clock().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    window = f"from={today}&to={today}"
    sip_body = client.get(f"/api/v1/devices/cam-1/uptime?{window}", headers=headers).get_json()
    mqtt_body = client.get(f"/api/v1/devices/cam-m/uptime?{window}", headers=headers).get_json()
    for body in (sip_body, mqtt_body):
        for name in ("device", "id", "to", "door"):  # `to` is the window's end capped at now
            body.pop(name, None)
    assert sip_body["offline_s"] > 0
    assert [p["cause"] for p in sip_body["offline_periods"]] == ["registered", "timeout"]
    assert sip_body == mqtt_body
    # The dashboard's device page shows both cameras' periods the same way.
    with sessions.begin() as session:
        add_user(session, "viewer", PASSWORD, "regulator")
    assert login(client, "viewer") == 302
    tables = [
        PERIODS.search(client.get(f"/devices/{device}").get_data(as_text=True))
        for device in ("cam-1", "cam-m")
    ]
    assert all(tables), "device page without its periods table"
    sip_rows, mqtt_rows = (ROW.findall(m[1]) for m in tables if m)
    # registered-not-online, the timeout, and the unobserved time before the doors' first run
    assert [row.count("登记后未上线") + row.count("心跳超时") for row in sip_rows] == [1, 1, 0]
    assert sip_rows == mqtt_rows
    report = client.get(f"/api/v1/uptime?{window}&table=sites", headers=headers)
    assert report.status_code == 200
