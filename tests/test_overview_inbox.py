"""The overview's long outages: offline over an hour, longest first, 20 at most, in scope."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.models import Device
from fangxin.service.pages.figures import INBOX, inbox
from tests.devices_helpers import HOUR, at, kitchen


def test_long_outages_are_the_oldest_offline_devices_in_scope(
    sessions: sessionmaker[Session],
) -> None:
    kitchen(sessions, "k-1", [f"a-{i:02d}" for i in range(25)], district="新华区")
    kitchen(sessions, "k-2", ["b-1", "b-2", "b-3"], district="卫东区")
    now = at(10 * HOUR)
    offline_since = {f"a-{i:02d}": at(i % 5 * HOUR) for i in range(25)}  # ties broken by id
    offline_since |= {"a-03": at(9.5 * HOUR), "b-1": at(0), "b-2": at(HOUR)}  # a-03: 30 min
    with sessions.begin() as session:
        for device in session.scalars(select(Device)):
            since = offline_since.get(device.id)
            device.conn_state = "offline" if since else "online"
            device.conn_since = since or at(0)
        session.get_one(Device, "a-07").active = False
    with sessions() as session:
        city = [d.id for d, _ in inbox(session, now, None)["offline"]]
        xinhua = [d.id for d, _ in inbox(session, now, "新华区")["offline"]]
        weidong = [(d.id, s.id) for d, s in inbox(session, now, "卫东区")["offline"]]
    expected = sorted(
        (since, device_id)
        for device_id, since in offline_since.items()
        if now - since > dt.timedelta(hours=1) and device_id != "a-07"
    )
    assert city == [device_id for _, device_id in expected][:INBOX]
    assert city[:4] == ["a-00", "a-05", "a-10", "a-15"]
    assert len(city) == INBOX
    assert (
        xinhua
        == [d for d in [device_id for _, device_id in expected] if d.startswith("a-")][:INBOX]
    )
    assert weidong == [("b-1", "k-2"), ("b-2", "k-2")]
