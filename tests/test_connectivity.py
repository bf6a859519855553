"""Heartbeats, LWT and the sweep become connectivity events; uptime from them, hand-computed."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices.connectivity import (
    apply_activity,
    is_online,
    offline_now_clause,
    online_now,
)
from fangxin.devices.models import Device, Site
from fangxin.devices.observation import close_run, open_run, touch_run, unknown_periods
from fangxin.devices.report import device_uptime
from fangxin.devices.sweep import restart_grace
from tests.devices_helpers import HOUR, at, beats, events, feed, kitchen, observed, outages, tick

SITE = "k-100"


def uptime(
    sessions: sessionmaker[Session],
    device_id: str,
    start: float = 0,
    end: float = HOUR,
    now: float = HOUR,
    business: bool = False,
) -> dict[str, object]:
    with sessions() as session:
        device = session.get(Device, device_id)
        assert device is not None
        site = session.get(Site, device.site_id)
        assert site is not None
        return device_uptime(
            session,
            device,
            site,
            at(start),
            at(end),
            at(now),
            tz="Asia/Shanghai",
            business_hours=business,
        )


def test_timeout_and_lwt_hand_computed(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    observed(sessions, (-2 * HOUR, 2 * HOUR))
    beats(sessions, SITE, "cam-1", range(0, 601, 60))
    tick(sessions, 700)  # 100 s after the last beat: not yet
    tick(sessions, 800)  # 200 s > 3 x 60: offline since 600 + 60
    beats(sessions, SITE, "cam-1", range(1200, 1801, 60))
    feed(sessions, SITE, "cam-1", "state", 1830, b"offline")  # the will: offline at once
    beats(
        sessions, SITE, "cam-1", [*range(2000, 2400, 60), 2530, *range(2590, 3600, 60)]
    )  # 170 s gap: no outage
    assert events(sessions, "cam-1") == [
        ("offline", -HOUR, "registered"),
        ("online", 0, "message"),
        ("offline", 660, "timeout"),
        ("online", 1200, "message"),
        ("offline", 1830, "lwt"),
        ("online", 2000, "message"),
    ]
    body = uptime(sessions, "cam-1")
    assert body["offline_s"] == 540 + 170
    assert body["online_s"] == 3600 - 710
    assert body["unknown_s"] == 0
    assert body["uptime"] == pytest.approx(2890 / 3600)
    assert [(p["cause"], p["seconds"]) for p in body["offline_periods"]] == [  # type: ignore[attr-defined]
        ("timeout", 540),
        ("lwt", 170),
    ]


def test_gap_found_by_a_message_before_the_sweep(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    beats(sessions, SITE, "cam-1", [0, 60, 500])  # no sweep ran: the message at 500 finds the gap
    assert events(sessions, "cam-1")[1:] == [
        ("online", 0, "message"),
        ("offline", 120, "timeout"),
        ("online", 500, "message"),
    ]


def test_per_device_intervals(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, {"cam-slow": 300, "cam-fast": 60})
    beats(sessions, SITE, "cam-slow", [0, 800, 1900])  # 800 s < 900 s; then 1100 s > 900 s
    assert events(sessions, "cam-slow")[1:] == [
        ("online", 0, "message"),
        ("offline", 1100, "timeout"),
        ("online", 1900, "message"),
    ]
    # the status payload announces 10 s: 3 missed beats are 30 s from then on
    feed(
        sessions,
        SITE,
        "cam-fast",
        "status",
        0,
        b'{"ts":"2026-11-02T00:00:00+08:00","interval_s":10}',
    )
    tick(sessions, 25)
    tick(sessions, 31)
    assert events(sessions, "cam-fast")[1:] == [
        ("online", 0, "message"),
        ("offline", 10, "timeout"),
    ]


def test_retained_state_is_no_sign_of_life(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    feed(sessions, SITE, "cam-1", "state", 10, b"online", retained=True)
    assert events(sessions, "cam-1") == [("offline", -HOUR, "registered")]
    feed(sessions, SITE, "cam-1", "state", 20, b"online")  # a live one is
    beats(sessions, SITE, "cam-1", [60])
    feed(sessions, SITE, "cam-1", "state", 90, b"offline", retained=True)  # seen at our restart
    feed(sessions, SITE, "cam-1", "state", 95, b"offline")  # already offline: no second event
    assert events(sessions, "cam-1")[1:] == [("online", 20, "message"), ("offline", 90, "lwt")]


def test_stale_will_does_not_end_a_newer_session(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    beats(sessions, SITE, "cam-1", [0, 60])
    with sessions.begin() as session:  # a will stamped before the last message, processed late
        apply_activity(session, {}, {"cam-1": ("offline", at(30))}, {})
    assert events(sessions, "cam-1")[1:] == [("online", 0, "message")]


def test_restart_grace_avoids_a_false_offline_burst(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1", "cam-2", "cam-dead"])
    with sessions.begin() as session:
        run, gap = open_run(session, "ingest-a", at(-600))
    assert gap  # nobody observed before: a gap
    for device in ("cam-1", "cam-2", "cam-dead"):
        beats(sessions, SITE, device, range(0, 601, 60))
    with sessions.begin() as session:
        close_run(session, run, at(630))  # we go down at 630 and come back at 1500
        run, gap = open_run(session, "ingest-a", at(1500))
        assert gap
        assert restart_grace(session, at(1500)) == 3
    tick(sessions, 1501)  # without the grace all three would go offline now
    beats(sessions, SITE, "cam-1", range(1550, 3600, 60))
    beats(sessions, SITE, "cam-2", range(1670, 3600, 60))  # within 180 s of the restart
    tick(sessions, 1690)  # cam-dead stays silent past the grace: offline since 600 + 60
    with sessions.begin() as session:
        touch_run(session, run, at(HOUR))
    assert events(sessions, "cam-1")[1:] == [("online", 0, "message")]
    assert events(sessions, "cam-2")[1:] == [("online", 0, "message")]
    assert events(sessions, "cam-dead")[1:] == [
        ("online", 0, "message"),
        ("offline", 660, "timeout"),
    ]
    with sessions() as session:
        with_run = unknown_periods(session, at(0), at(HOUR), at(HOUR))
        assert with_run == [(at(630), at(1500))]
    for device in ("cam-1", "cam-2"):
        body = uptime(sessions, device, now=HOUR)
        assert (body["online_s"], body["offline_s"], body["unknown_s"]) == (2730, 0, 870)
    dead = uptime(sessions, "cam-dead", now=HOUR)
    # offline since 660, of which 660..1500 is unknown: offline counts from 1500
    assert (dead["online_s"], dead["offline_s"], dead["unknown_s"]) == (630, 2100, 870)


def test_without_grace_the_restart_would_cost_offline_time(
    sessions: sessionmaker[Session],
) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    observed(sessions, (-HOUR, 630), (1500, 2 * HOUR))
    beats(sessions, SITE, "cam-1", range(0, 601, 60))
    tick(sessions, 1501)
    beats(sessions, SITE, "cam-1", range(1550, 3600, 60))
    body = uptime(sessions, "cam-1")
    assert (body["online_s"], body["offline_s"], body["unknown_s"]) == (2680, 50, 870)


def test_run_of_a_crashed_ingester_ends_at_its_last_sign_of_life(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        run, _ = open_run(session, "ingest-a", at(0))
        touch_run(session, run, at(100))
    with sessions() as session:
        # still alive as long as it was heard from within 30 s
        assert unknown_periods(session, at(0), at(120), at(120)) == []
        assert unknown_periods(session, at(0), at(300), at(300)) == [(at(100), at(300))]
    with sessions.begin() as session:
        _, gap = open_run(session, "ingest-a", at(110))  # restarted: its old run was never closed
    assert gap


def test_window_cut_at_registration_and_now(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"], created=at(600))
    observed(sessions, (-HOUR, 2 * HOUR))
    beats(sessions, SITE, "cam-1", range(900, 1801, 60))
    body = uptime(sessions, "cam-1", start=0, end=2 * HOUR, now=1800)
    # registered at 600 (offline until the first message at 900), window ends at now = 1800
    assert (body["online_s"], body["offline_s"], body["unknown_s"]) == (900, 300, 0)
    assert body["offline_periods"] == [
        {
            "from": at(600).isoformat(),
            "to": at(900).isoformat(),
            "cause": "registered",
            "seconds": 300,
        }
    ]


def test_business_hours_of_the_site(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"], opens="22:00", closes="02:00")
    observed(sessions, (-HOUR, 2 * 24 * HOUR))
    outages(sessions, "cam-1", (HOUR, 5 * HOUR), (23 * HOUR, 27 * HOUR))
    day = 24 * HOUR
    body = uptime(sessions, "cam-1", 0, day, 2 * day, business=True)
    assert (body["online_s"], body["offline_s"]) == (2 * HOUR, 2 * HOUR)
    assert body["business_hours"] == "22:00-02:00"
    around = uptime(sessions, "cam-1", 0, day, 2 * day)
    assert (around["online_s"], around["offline_s"]) == (19 * HOUR, 5 * HOUR)


def test_deadline_is_the_sweep_queue(sessions: sessionmaker[Session]) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    beats(sessions, SITE, "cam-1", [0])
    with sessions() as session:
        device = session.get(Device, "cam-1")
        assert device is not None
        assert device.deadline == at(180)
        assert device.conn_state == "online"
    tick(sessions, 181)
    with sessions() as session:
        device = session.get(Device, "cam-1")
        assert device is not None
        # offline since 60; the deadline now waits for the offline alarm
        assert (device.conn_state, device.conn_since, device.deadline) == (
            "offline",
            at(60),
            at(60),
        )


@pytest.mark.parametrize(
    ("conn_state", "deadline", "online"),
    [
        ("online", None, True),
        ("online", 61, True),
        ("online", 60, False),  # the deadline passed and the sweep has not got to it yet
        ("offline", None, False),
        ("offline", 61, False),
        (None, None, False),
    ],
)
def test_one_rule_of_online_in_python_and_sql(
    sessions: sessionmaker[Session], conn_state: str | None, deadline: float | None, online: bool
) -> None:
    now = at(60)
    due = None if deadline is None else at(deadline)
    assert online_now(conn_state, due, now) is online
    kitchen(sessions, SITE, ["cam-1"])
    with sessions() as session:
        session.execute(
            update(Device)
            .where(Device.id == "cam-1")
            .values(conn_state=conn_state, deadline=due, last_seen_at=at(0))
        )
        device = session.get(Device, "cam-1")
        assert device is not None
        if conn_state is not None:  # without events, is_online falls back to the last message
            assert is_online(device, now) is online
        offline = session.scalars(select(Device.id).where(offline_now_clause(now))).all()
        assert ("cam-1" not in offline) is online


def test_without_events_the_last_message_and_declared_state_decide(
    sessions: sessionmaker[Session],
) -> None:
    kitchen(sessions, SITE, ["cam-1"])
    with sessions() as session:
        device = session.get(Device, "cam-1")
        assert device is not None
        device.conn_state, device.last_seen_at = None, at(0)
        assert is_online(device, at(179))  # three beats of 60 s
        assert not is_online(device, at(180))
        device.state, device.state_at = "offline", at(10)
        assert not is_online(device, at(60))
        device.state_at = at(-10)  # declared before the last message: the message wins
        assert is_online(device, at(60))
