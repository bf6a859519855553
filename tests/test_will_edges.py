"""A device's will (offline declared) at the edges of its deadline, last message and state."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.connectivity import OFFLINE, ONLINE, Live, Transition, is_online
from fangxin.devices.models import Device
from fangxin.devices.sweep import restart_grace
from tests.devices_helpers import at, kitchen

T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
US = dt.timedelta(microseconds=1)


def online(seen: dt.datetime = T0) -> Live:
    """A camera beating every 60 s, last heard at `seen`: offline from seen + 3 x 60 s."""
    return Live(
        id="cam-1",
        interval_s=60,
        reported_interval_s=None,
        announced_interval_s=None,
        missed_beats=3,
        last_seen_at=seen,
        state="online",
        state_at=seen,
        conn_state=ONLINE,
        conn_since=seen - dt.timedelta(hours=1),
        deadline=seen + dt.timedelta(seconds=180),
    )


def test_a_will_at_the_deadline_records_the_timeout_first() -> None:
    live = online()
    live.declared(OFFLINE, T0 + dt.timedelta(seconds=180))
    # the sweep had not got there: the outage began one interval after the last message
    start = T0 + dt.timedelta(seconds=60)
    assert live.out == [Transition("cam-1", OFFLINE, start, "timeout")]
    assert (live.conn_state, live.conn_since, live.deadline) == (OFFLINE, start, start)


def test_a_will_just_before_the_deadline_is_the_outage_itself() -> None:
    live = online()
    at = T0 + dt.timedelta(seconds=180) - US
    live.declared(OFFLINE, at)
    assert live.out == [Transition("cam-1", OFFLINE, at, "lwt")]
    assert (live.conn_state, live.deadline) == (OFFLINE, at)


def test_a_will_at_the_last_message_still_counts_one_before_does_not() -> None:
    live = online()
    live.declared(OFFLINE, T0)
    assert live.out == [Transition("cam-1", OFFLINE, T0, "lwt")]
    stale = online()
    stale.declared(OFFLINE, T0 - US)  # a will of an older connection, overtaken
    assert (stale.out, stale.conn_state) == ([], ONLINE)


def test_a_declaration_at_the_same_instant_replaces_the_state() -> None:
    live = online()
    live.declared(OFFLINE, T0)
    assert (live.state, live.state_at) == (OFFLINE, T0)
    older = online()
    older.declared(OFFLINE, T0 - US)
    assert (older.state, older.state_at) == ("online", T0)


def test_restart_grace_gives_online_devices_one_timeout_and_no_less(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    kitchen(sessions, "k-g", ["cam-on", "cam-off", "cam-late", "cam-edge"])
    rows = {  # (state, deadline); every camera beats each 60 s and is offline after 5 misses
        "cam-on": (ONLINE, at(900)),
        "cam-off": (OFFLINE, at(500)),  # an outage's start, until its alarm: not a timeout
        "cam-late": (ONLINE, at(5000)),
        "cam-edge": (ONLINE, at(1300)),  # exactly one timeout from the restart already
    }
    with sessions.begin() as session:
        for device_id, (state, deadline) in rows.items():
            session.execute(
                update(Device)
                .where(Device.id == device_id)
                .values(conn_state=state, deadline=deadline, interval_s=60, missed_beats=5)
            )
    caplog.set_level(logging.INFO, logger="fangxin.devices.sweep")
    with sessions.begin() as session:
        assert restart_grace(session, at(1000)) == 1
    with sessions() as session:
        deadlines = {d: t for d, t in session.execute(select(Device.id, Device.deadline))}
    assert deadlines == {
        "cam-on": at(1300),
        "cam-off": at(500),
        "cam-late": at(5000),
        "cam-edge": at(1300),
    }
    assert "Restart grace: 1 online devices get one timeout before any offline" in caplog.messages


def test_a_message_stamped_like_the_last_one_changes_nothing() -> None:
    live = online()
    live.go(OFFLINE, T0 + dt.timedelta(seconds=60), "timeout")
    live.out.clear()
    live.alive(T0)  # the same receive time as the last message: an older batch, processed late
    assert (live.out, live.conn_state, live.last_seen_at) == ([], OFFLINE, T0)
    live.alive(T0 + US)  # a newer one ends the outage, never before the outage began
    assert live.out == [Transition("cam-1", ONLINE, T0 + dt.timedelta(seconds=60), "message")]


def unmigrated(**fields: Any) -> SimpleNamespace:
    """A device no connectivity rule has touched yet (conn_state NULL): judged on its fields."""
    base = {
        "conn_state": None,
        "deadline": None,
        "state": None,
        "state_at": None,
        "last_seen_at": None,
        "interval_s": 60,
        "reported_interval_s": None,
        "announced_interval_s": None,
        "missed_beats": 5,
    }
    return SimpleNamespace(**{**base, **fields})


def test_an_unmigrated_device_is_online_within_its_own_beat_count() -> None:
    assert is_online(unmigrated(), T0) is False  # never heard from
    heard = unmigrated(last_seen_at=T0)
    assert is_online(heard, T0 + dt.timedelta(seconds=300) - US) is True  # 5 x 60 s
    assert is_online(heard, T0 + dt.timedelta(seconds=300)) is False
    # an `offline` declared at the instant of its last message wins over that message
    declared = unmigrated(last_seen_at=T0, state=OFFLINE, state_at=T0)
    assert is_online(declared, T0 + US) is False
