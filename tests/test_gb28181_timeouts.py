"""The platform sets each device's missed-beats count (最大心跳超时次数); edges over real SIP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.config import Settings
from fangxin.db import utcnow
from fangxin.devices.models import ConnectivityEvent, Device
from tests.sip_helpers import CAMERA, NVR, Door, keepalive, register_devices, start_door, wait_for
from tests.sip_helpers import Device as SipPeer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def door(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[Door]:
    # Interval 1 s; the camera is offline after 2 missed beats, the NVR after the default 3.
    passwords = register_devices(sessions, interval_s=1, missed={"cam-1": 2})
    running = start_door(settings, sessions, min_expires=1, tick_s=0.02)
    yield Door(running, passwords)
    running.stop()


def _device(sessions: sessionmaker[Session], device_id: str) -> Device:
    with sessions() as session:
        device = session.get(Device, device_id)
        assert device is not None
        return device


def _timeout_event(sessions: sessionmaker[Session], device_id: str) -> ConnectivityEvent:
    with sessions() as session:
        return session.scalars(
            select(ConnectivityEvent).where(
                ConnectivityEvent.device_id == device_id, ConnectivityEvent.cause == "timeout"
            )
        ).one()


def _beat(peer: SipPeer, sessions: sessionmaker[Session], device_id: str, gb_id: str) -> Device:
    """Send one keepalive and return the device once its receive time is stored."""
    # The REGISTER's receive time may still be on its way to the database: wait for a time
    # no earlier than the send, which only the keepalive's can be (one clock, one machine).
    sent = utcnow()
    assert peer.ask(keepalive(gb_id, 7)).startswith("SIP/2.0 200")

    def stored() -> bool:
        seen = _device(sessions, device_id).last_seen_at
        return seen is not None and seen >= sent

    wait_for(stored)
    return _device(sessions, device_id)


def test_two_missed_beats_of_one_second_are_offline_after_two_seconds_not_three(
    door: Door, sessions: sessionmaker[Session]
) -> None:
    cam, nvr = SipPeer(door.port), SipPeer(door.port)
    try:
        assert cam.register(CAMERA, door.passwords[CAMERA]).startswith("SIP/2.0 200")
        assert nvr.register(NVR, door.passwords[NVR]).startswith("SIP/2.0 200")
        camera, recorder = _beat(cam, sessions, "cam-1", CAMERA), _beat(nvr, sessions, "nvr-1", NVR)
    finally:
        cam.close()
        nvr.close()
    assert camera.last_seen_at is not None
    assert recorder.last_seen_at is not None
    second = dt.timedelta(seconds=1)
    assert camera.deadline == camera.last_seen_at + 2 * second
    assert recorder.deadline == recorder.last_seen_at + 3 * second
    wait_for(lambda: _device(sessions, "cam-1").conn_state == "offline", 5)
    event = _timeout_event(sessions, "cam-1")
    # Offline from the last keepalive plus one interval, found once two intervals had passed
    # (how soon after is the sweep's tick and the machine's load, not the rule).
    assert event.at == camera.last_seen_at + second
    assert event.recorded_at >= camera.last_seen_at + 2 * second
    wait_for(lambda: _device(sessions, "nvr-1").conn_state == "offline", 5)
    late = _timeout_event(sessions, "nvr-1")
    assert late.at == recorder.last_seen_at + second
    assert late.recorded_at >= recorder.last_seen_at + 3 * second


@pytest.fixture
def runner(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FANGXIN_SIP_ID", "41040000002000000001")
    return CliRunner()


def test_missed_beats_is_set_on_the_platform_side_and_bounded(
    runner: CliRunner, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    args = ["sites", "add", "k-1", "--kind", "kitchen", "--district", "新华区", "--name", "食堂"]
    assert runner.invoke(main, args).exit_code == 0
    add = ["devices", "add", "nvr-1", "--site", "k-1", "--kind", "nvr"]
    out = runner.invoke(main, [*add, "--gb-id", "41040200001180000001", "--missed-beats", "5"])
    assert out.exit_code == 0, out.output
    for bad in ("1", "11"):
        refused = runner.invoke(main, [*add[:2], "nvr-2", *add[3:], "--missed-beats", bad])
        assert refused.exit_code != 0
    csv = tmp_path / "devices.csv"
    csv.write_text(
        "id,site,kind,gb_id,missed_beats\n"
        "cam-1,k-1,camera,41040200001320000001,2\n"
        "cam-2,k-1,camera,,\n"
        "cam-3,k-1,camera,,11\n",
        encoding="utf-8",
    )
    out = runner.invoke(main, ["devices", "import", str(csv)])
    assert out.exit_code == 0, out.output
    assert "2 devices imported, 1 rows refused" in out.output
    beats = {d: _device(sessions, d).missed_beats for d in ("nvr-1", "cam-1", "cam-2")}
    assert beats == {"nvr-1": 5, "cam-1": 2, "cam-2": 3}


def test_missed_beats_over_http(client: FlaskClient, admin_key: str) -> None:
    key = {"Authorization": f"Bearer {admin_key}"}
    site = {"id": "k-1", "kind": "kitchen", "district": "新华区", "name": "食堂"}
    assert client.post("/api/v1/sites", json=site, headers=key).status_code == 201
    cam = {"id": "cam-1", "site": "k-1", "kind": "camera", "missed_beats": 4}
    created = client.post("/api/v1/devices", json=cam, headers=key)
    assert created.status_code == 201
    assert created.get_json()["missed_beats"] == 4
    too_many = client.post(
        "/api/v1/devices", json={**cam, "id": "cam-2", "missed_beats": 11}, headers=key
    )
    assert too_many.status_code in (400, 422)
