"""The timeout sweep at its edges: batch bound and order, retired devices, the alarm instant."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.models import Alarm, Device
from fangxin.devices.sweep import SweepResult, sweep
from tests.devices_helpers import at, kitchen

HALF_HOUR = dt.timedelta(seconds=1800)
US = dt.timedelta(microseconds=1)


def set_rows(sessions: sessionmaker[Session], **rows: dict[str, Any]) -> None:
    with sessions.begin() as session:
        for device_id, values in rows.items():
            session.execute(update(Device).where(Device.id == device_id).values(**values))


def run(sessions: sessionmaker[Session], seconds: float, **kwargs: Any) -> SweepResult:
    with sessions.begin() as session:
        return sweep(session, at(seconds), HALF_HOUR, **kwargs)


def states(sessions: sessionmaker[Session]) -> dict[str, tuple[str | None, dt.datetime | None]]:
    with sessions() as session:
        rows = session.execute(select(Device.id, Device.conn_state, Device.deadline))
        return {d: (state, deadline) for d, state, deadline in rows}


def alarmed(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Alarm.device_id).where(Alarm.type == "offline")))


def online(deadline: float) -> dict[str, Any]:
    """Online, silent since a beat one timeout (3 x 60 s) before `deadline`."""
    return {
        "conn_state": "online",
        "conn_since": at(-10_000),
        "last_seen_at": at(deadline - 180),
        "deadline": at(deadline),
    }


def offline(since: float) -> dict[str, Any]:
    """Offline since `since`, no alarm yet: the deadline is the outage's start."""
    return {"conn_state": "offline", "conn_since": at(since), "deadline": at(since)}


def test_a_tick_takes_the_earliest_deadlines_up_to_its_bound(
    sessions: sessionmaker[Session],
) -> None:
    kitchen(sessions, "k-b", ["cam-1", "cam-2", "cam-3"])
    set_rows(sessions, **{"cam-1": online(300), "cam-2": online(100), "cam-3": online(200)})
    assert run(sessions, 5000, limit=2) == SweepResult(timed_out=2, alarms=2)
    after = states(sessions)
    assert after["cam-1"] == ("online", at(300))  # next tick's; and no alarm while online
    assert {after["cam-2"][0], after["cam-3"][0]} == {"offline"}
    assert alarmed(sessions) == ["cam-2", "cam-3"]


def test_alarms_take_the_oldest_outages_up_to_the_bound(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, "k-a", ["cam-1", "cam-2", "cam-3"])
    set_rows(sessions, **{"cam-1": offline(300), "cam-2": offline(100), "cam-3": offline(200)})
    assert run(sessions, 5000, limit=2) == SweepResult(timed_out=0, alarms=2)
    assert alarmed(sessions) == ["cam-2", "cam-3"]


def test_the_offline_alarm_is_due_at_exactly_the_threshold(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, "k-t", ["cam-1", "cam-2"])
    set_rows(sessions, **{"cam-1": offline(0), "cam-2": offline(600)})
    with sessions.begin() as session:
        assert sweep(session, at(1800) - US, HALF_HOUR).alarms == 0
    assert run(sessions, 1800) == SweepResult(timed_out=0, alarms=1)
    # raised once: its deadline is cleared, the other outage's is kept for its own time
    assert states(sessions) == {"cam-1": ("offline", None), "cam-2": ("offline", at(600))}
    assert run(sessions, 1900) == SweepResult(timed_out=0, alarms=0)
    assert alarmed(sessions) == ["cam-1"]


def test_retired_devices_neither_time_out_nor_alarm(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, "k-r", ["cam-on", "cam-off"])
    set_rows(
        sessions,
        **{"cam-on": {**online(100), "active": False}, "cam-off": {**offline(0), "active": False}},
    )
    assert run(sessions, 5000) == SweepResult(timed_out=0, alarms=0)
    assert states(sessions) == {"cam-on": ("online", at(100)), "cam-off": ("offline", at(0))}
    assert alarmed(sessions) == []


def test_a_door_alarms_only_for_its_own_devices(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, "k-d", ["cam-mqtt", "cam-gb"])
    set_rows(
        sessions,
        **{"cam-mqtt": offline(0), "cam-gb": {**offline(0), "gb_id": "41040200001320000031"}},
    )
    assert run(sessions, 5000, door="mqtt") == SweepResult(timed_out=0, alarms=1)
    assert alarmed(sessions) == ["cam-mqtt"]


def test_a_tick_that_changed_something_says_so(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    kitchen(sessions, "k-l", ["cam-1"])
    set_rows(sessions, **{"cam-1": online(100)})
    caplog.set_level(logging.INFO, logger="fangxin.devices.sweep")
    run(sessions, 200)
    run(sessions, 201)  # nothing left to do: no line
    assert caplog.messages == ["Sweep: 1 timed out, 0 offline alarms"]
