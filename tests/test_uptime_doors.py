"""Observation per door: a device's unknown time is its own door's downtime, not the other's."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.models import Device, Site
from fangxin.devices.observation import open_run
from fangxin.devices.report import device_uptime, uptime_report
from fangxin.devices.sweep import restart_grace, sweep
from tests.devices_helpers import HOUR, at, kitchen, observed, outages

SITE = "k-300"
GB_CAM, GB_CAM2 = "41040200001320000031", "41040200001320000032"


def _fleet(sessions: sessionmaker[Session]) -> None:
    """One MQTT camera and two GB/T 28181 cameras, online all along unless told otherwise."""
    kitchen(sessions, SITE, ["cam-mqtt", "cam-gb", "cam-gb2"])
    with sessions.begin() as session:
        for device_id, gb_id in (("cam-gb", GB_CAM), ("cam-gb2", GB_CAM2)):
            session.execute(update(Device).where(Device.id == device_id).values(gb_id=gb_id))
    outages(sessions, "cam-mqtt")
    # Timed out while the gateway was down (e.g. by a sweep of old): that is unknown too.
    outages(sessions, "cam-gb", (HOUR + 120, 2 * HOUR))
    outages(sessions, "cam-gb2", (1.5 * HOUR, 2.5 * HOUR))
    # The MQTT ingester ran all along but for 10 minutes; the gateway was down from 1 h to 2 h.
    observed(sessions, (0, 0.5 * HOUR), (0.5 * HOUR + 600, 3 * HOUR))
    observed(sessions, (0, HOUR), (2 * HOUR, 3 * HOUR), door="sip")


def _one(session: Session, device_id: str) -> dict[str, object]:
    device, site = session.get(Device, device_id), session.get(Site, SITE)
    assert device is not None
    assert site is not None
    return device_uptime(
        session, device, site, at(0), at(3 * HOUR), at(3 * HOUR), tz="Asia/Shanghai",
        business_hours=False,
    )  # fmt: skip


def test_gateway_downtime_is_unknown_for_gb_devices_only(sessions: sessionmaker[Session]) -> None:
    _fleet(sessions)
    with sessions() as session:
        mqtt, gb, gb2 = (_one(session, d) for d in ("cam-mqtt", "cam-gb", "cam-gb2"))
        report = uptime_report(
            session, at(0), at(3 * HOUR), at(3 * HOUR), tz="Asia/Shanghai", business_hours=False
        )
    # The MQTT camera: only its ingester's 10 minutes are unknown; the gateway's hour is not.
    assert (mqtt["online_s"], mqtt["offline_s"], mqtt["unknown_s"]) == (3 * HOUR - 600, 0, 600)
    assert mqtt["door"] == "mqtt"
    # The GB/T 28181 camera: the gateway's hour is unknown, the ingester's 10 minutes are not.
    assert (gb["online_s"], gb["offline_s"], gb["unknown_s"]) == (2 * HOUR, 0, HOUR)
    assert gb["door"] == "sip"
    assert gb["offline_periods"] == []
    assert gb["unknown_periods"] == [{"from": at(HOUR).isoformat(), "to": at(2 * HOUR).isoformat()}]
    # Offline from 1.5 h to 2.5 h: only the half hour after the gateway came back is offline.
    assert (gb2["online_s"], gb2["offline_s"], gb2["unknown_s"]) == (1.5 * HOUR, 0.5 * HOUR, HOUR)
    assert [p["seconds"] for p in gb2["offline_periods"]] == [0.5 * HOUR]  # type: ignore[attr-defined]
    rows = {r["device"]: r for r in report["devices"]}
    for device_id, single in (("cam-mqtt", mqtt), ("cam-gb", gb), ("cam-gb2", gb2)):
        figures = {k: rows[device_id][k] for k in ("online_s", "offline_s", "unknown_s", "uptime")}
        assert figures == {k: single[k] for k in figures}, device_id
    assert [p["from"] for p in report["unknown_periods_by_door"]["sip"]] == [at(HOUR).isoformat()]
    assert report["unknown_periods"] == []  # some door observed at every moment


def test_each_door_sweeps_and_graces_its_own_devices(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-mqtt", "cam-gb"])
    with sessions.begin() as session:
        session.execute(update(Device).where(Device.id == "cam-gb").values(gb_id=GB_CAM))
        session.execute(
            update(Device).values(conn_state="online", conn_since=at(0), deadline=at(180))
        )
    observed(sessions, (0, 1000))
    with sessions.begin() as session:
        # The ingester has been running; the gateway starts: its door was unobserved.
        assert open_run(session, "ingester", at(1000), door="mqtt")[1] is False
        assert open_run(session, "gateway", at(1000), door="sip")[1] is True
        assert open_run(session, "gateway", at(1001), door="sip")[1] is True  # its own crash
        assert restart_grace(session, at(1000), door="sip") == 1
    with sessions() as session:
        deadlines = {d.id: d.deadline for d in session.query(Device).order_by(Device.id)}
    assert deadlines == {"cam-gb": at(1180), "cam-mqtt": at(180)}
    with sessions.begin() as session:
        # The ingester's sweep times out its own camera only, however late the gateway's is.
        assert sweep(session, at(1200), dt.timedelta(hours=1), door="mqtt").timed_out == 1
    with sessions() as session:
        states = {d.id: d.conn_state for d in session.query(Device).order_by(Device.id)}
    assert states == {"cam-gb": "online", "cam-mqtt": "offline"}
