"""Stored camera days: a window read from them equals the window counted now, after any write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.devices import day_store, registry
from fangxin.devices.connectivity import Transition, record_transitions
from fangxin.devices.fleet import Filters, fleet_figures
from fangxin.devices.models import DeviceDay, IngesterRun, Site, StoredDay, StoredDayStale
from fangxin.ingest.consumer import Ingester
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.runner import Watchdog
from fangxin.ingest.sinks import SqlSink
from fangxin.trace.plan import camera_days
from fangxin.trace.plan.camera_outages import Outages, outage_seconds
from fangxin.trace.plan.camera_time import kitchen_cameras
from fangxin.trace.plan.models import CameraDaySite
from tests.devices_helpers import HOUR, at, kitchen, observed, outages

TZ = "Asia/Shanghai"
DAY = 24 * HOUR
NOW = at(5 * DAY + 10 * HOUR)  # days 0 to 4 after T0 have settled, day 5 is today
WINDOWS = [(at(0), NOW), (at(-7 * HOUR), NOW), (at(1 * DAY + 9 * HOUR), at(4 * DAY + 3 * HOUR))]


def fleet(sessions: sessionmaker[Session]) -> None:
    """Two kitchens with their own hours; outages across midnights, one open; a gap unobserved."""
    kitchen(sessions, "k-1", ["c-1", "c-2"], opens="08:00", closes="20:00", licence="L1")
    kitchen(
        sessions, "k-2", ["c-3"], district="卫东区", opens="22:00", closes="06:00", licence="L2"
    )
    outages(sessions, "c-1", (9 * HOUR, 11 * HOUR), (DAY + 19 * HOUR, 2 * DAY + 12 * HOUR))
    outages(sessions, "c-2", (3 * DAY + 12 * HOUR, None))
    outages(sessions, "c-3", (23 * HOUR, DAY + 2 * HOUR), (2 * DAY + 5 * HOUR, 4 * DAY + HOUR))
    # The ingester was down from day 2 10:00 to 14:00: unknown, not offline.
    observed(sessions, (-2 * HOUR, 2 * DAY + 10 * HOUR), (2 * DAY + 14 * HOUR, 6 * DAY))


def both(session: Session, start: dt.datetime, end: dt.datetime) -> tuple[Outages, Outages]:
    """Return the window from the stored days (where ready) and counted now."""
    stored = camera_days.offline_by_site(session, start, end, NOW, tz=TZ, business_hours=True)
    live = outage_seconds(session, start, end, NOW, tz=TZ, business_hours=True)
    return stored, live


def assert_same(sessions: sessionmaker[Session]) -> dict[tuple[int, str, int], float]:
    """Every window read from stored days equals it counted now; return the figures."""
    out = {}
    with sessions() as session:
        for n, (start, end) in enumerate(WINDOWS):
            stored, live = both(session, start, end)
            assert stored.keys() == live.keys()
            for site, figures in live.items():
                assert stored[site] == pytest.approx(figures, abs=1e-6)
                out[(n, site, 0)], out[(n, site, 1)] = figures
    return out


def report(session: Session, business: bool) -> dict[tuple[str, str], float]:
    """Return the uptime report's device figures over the first two windows."""
    out = {}
    for n, (start, end) in enumerate(WINDOWS[:2]):
        for filters in (None, Filters(district="卫东区")):
            fleet = fleet_figures(
                session, start, end, NOW, tz=TZ, business_hours=business, filters=filters
            )
            for d in fleet.devices:
                for name in ("online_s", "offline_s", "unknown_s"):
                    key = f"{n}{business}{d.device_id}{'' if filters is None else '/d'}"
                    out[key, name] = getattr(d.figures, name)
    return out


def assert_same_report(sessions: sessionmaker[Session]) -> dict[tuple[str, str], float]:
    """The uptime report read from stored days equals it counted whole; return its figures."""
    with sessions() as session:
        stored = {**report(session, True), **report(session, False)}
        session.execute(delete(StoredDay))  # rolled back: only this session counts it whole
        counted = {**report(session, True), **report(session, False)}
    assert stored == pytest.approx(counted, abs=1e-6)
    return counted


def refresh(sessions: sessionmaker[Session]) -> None:
    assert camera_days.refresh(sessions, NOW, TZ) == 0


def ready(sessions: sessionmaker[Session]) -> bool:
    """Tell whether the first window would be read from stored days."""
    days = day_store.settled_days(*WINDOWS[0], NOW, TZ)
    with sessions() as session:
        return day_store.stored_ready(session, TZ, days)


def test_settled_days_are_the_whole_local_days_a_minute_after_they_end() -> None:
    assert day_store.settled_days(at(0), NOW, NOW, TZ) == [
        dt.date(2026, 11, 2) + dt.timedelta(days=i) for i in range(5)
    ]
    assert day_store.settled_days(at(-1), at(DAY), at(DAY), TZ) == []  # not yet settled
    late = at(DAY) + day_store.SETTLED
    assert day_store.settled_days(at(-1), late, late, TZ) == [dt.date(2026, 11, 2)]
    assert day_store.settled_days(at(1), late, late, TZ) == []  # day 0 is not whole


def test_a_window_reads_its_stored_days(sessions: sessionmaker[Session]) -> None:
    fleet(sessions)
    before = assert_same(sessions)
    assert not ready(sessions)  # nothing stored yet: counted now
    refresh(sessions)
    assert ready(sessions)
    with sessions() as session:
        kept = day_store.settled_days(day_store.kept_since(NOW, TZ), NOW, NOW, TZ)
        assert session.scalar(select(func.count()).select_from(StoredDay)) == len(kept)
        assert session.scalar(select(func.count()).select_from(StoredDayStale)) == 0
    assert assert_same(sessions) == pytest.approx(before)
    assert_same_report(sessions)
    # The stored rows are what is read: an altered one shows (no write path alters them).
    with sessions.begin() as session:
        session.execute(
            update(CameraDaySite)
            .where(CameraDaySite.site_id == "k-1", CameraDaySite.day == dt.date(2026, 11, 2))
            .values(offline_s=CameraDaySite.offline_s + 1000)
        )
    with sessions() as session:
        stored, live = both(session, *WINDOWS[0])
    assert stored["k-1"][0] == pytest.approx(live["k-1"][0] + 1000)
    with sessions.begin() as session:
        session.execute(
            update(DeviceDay)
            .where(DeviceDay.device_id == "c-3", DeviceDay.day == dt.date(2026, 11, 3))
            .values(business_offline_s=DeviceDay.business_offline_s + 500)
        )
    with sessions() as session:
        figures = report(session, True)
        session.execute(delete(StoredDay))
        counted = report(session, True)
    key = ("0Truec-3", "offline_s")
    assert figures[key] == pytest.approx(counted[key] + 500)


def _close_open_outage(session: Session) -> None:
    # c-2's open outage ends on day 4 (a settled day): backdated, as a sweep after a gap does
    record_transitions(session, [Transition("c-2", "online", at(4 * DAY + 9 * HOUR), "message")])


def _late_outage(session: Session) -> None:
    record_transitions(
        session,
        [
            Transition("c-3", "offline", at(4 * DAY + 23 * HOUR), "timeout"),
            Transition("c-3", "online", at(4 * DAY + 23.5 * HOUR), "message"),
        ],
    )


def _deactivate(session: Session) -> None:
    registry.set_active(session, "c-1", False, NOW)


def _new_hours(session: Session) -> None:
    site = session.get(Site, "k-1")
    assert site is not None
    site.opens, site.closes = "10:00", "18:00"


def _raw_hours(session: Session) -> None:  # by hand in SQL: triggers see every write path
    session.execute(text("UPDATE sites SET opens = '00:00', closes = '00:00' WHERE id = 'k-2'"))


def _gap_observed(session: Session) -> None:
    session.add(
        IngesterRun(
            client_id="late",
            started_at=at(2 * DAY + 10 * HOUR),
            last_alive_at=at(2 * DAY + 14 * HOUR),
            ended_at=at(2 * DAY + 14 * HOUR),
        )
    )


def _move_device(session: Session) -> None:
    device = registry.get_device(session, "c-3")
    device.site_id = "k-1"


WRITES: list[Callable[[Session], None]] = [
    _close_open_outage,
    _late_outage,
    _deactivate,
    _new_hours,
    _raw_hours,
    _gap_observed,
    _move_device,
]


@pytest.mark.parametrize("write", WRITES, ids=[w.__name__.strip("_") for w in WRITES])
def test_a_write_touching_a_stored_day_is_never_read_stale(
    sessions: sessionmaker[Session], write: Callable[[Session], None]
) -> None:
    fleet(sessions)
    refresh(sessions)
    before = assert_same(sessions)
    report_before = assert_same_report(sessions)
    with sessions.begin() as session:
        write(session)
    # Read right after the write, before any refresh: counted now, equal to the new figures.
    assert not ready(sessions)
    after = assert_same(sessions)
    assert after != pytest.approx(before)  # the write changed what a stored day held
    report_after = assert_same_report(sessions)
    assert report_after != pytest.approx(report_before)
    refresh(sessions)
    assert ready(sessions)
    assert assert_same(sessions) == pytest.approx(after)
    assert assert_same_report(sessions) == pytest.approx(report_after)


def test_todays_writes_leave_the_stored_days_readable(sessions: sessionmaker[Session]) -> None:
    fleet(sessions)
    refresh(sessions)
    with sessions.begin() as session:
        record_transitions(session, [Transition("c-1", "offline", at(5 * DAY + HOUR), "timeout")])
        session.execute(text("UPDATE ingester_runs SET last_alive_at = last_alive_at WHERE id = 2"))
    assert ready(sessions)
    assert_same(sessions)


def test_kitchen_figures_are_the_same_from_stored_days(sessions: sessionmaker[Session]) -> None:
    fleet(sessions)

    def figures() -> dict[tuple[str, str], float]:
        with sessions() as session:
            found = kitchen_cameras(session, at(-7 * HOUR), NOW, NOW, tz=TZ, business_hours=True)
        seconds = found.seconds.values()
        return {(x.site_id, k): getattr(x, k) for x in seconds for k in ("total_s", "offline_s")}

    counted = figures()
    refresh(sessions)
    assert figures() == pytest.approx(counted)
    assert counted["k-1", "offline_s"] > 0
    assert counted["k-2", "offline_s"] > 0


def test_the_ingesters_tick_stores_a_few_busy_days_at_a_time(
    sessions: sessionmaker[Session],
) -> None:
    fleet(sessions)
    # The cameras are offline from their registration (T0 - 1 h, the day before day 0): six days
    # with outages, three of them now, latest first; the quiet days before all at once.
    assert camera_days.refresh(sessions, NOW, TZ, limit=3) == 3
    days = day_store.settled_days(day_store.kept_since(NOW, TZ), NOW, NOW, TZ)
    with sessions() as session:
        stored = session.scalars(select(StoredDay.day).order_by(StoredDay.day)).all()
    assert stored == [d for d in days if d < dt.date(2026, 11, 1) or d > dt.date(2026, 11, 3)]
    assert camera_days.refresh(sessions, NOW, TZ, limit=3) == 0


def test_the_watchdog_keeps_the_days(sessions: sessionmaker[Session]) -> None:
    """The ingester's watchdog stores days by the wall clock, a few per tick until none miss."""
    fleet(sessions)
    ingester = Ingester(  # never started: the watchdog only asks whether it is connected
        BrokerAddress.parse("mqtt://127.0.0.1:1"), sessions, Pipeline(SqlSink()), client_id="t"
    )
    watchdog = Watchdog(ingester, sessions, tz=TZ)
    watchdog.tick()
    assert watchdog._days_missing > 0
    while watchdog._days_missing:
        watchdog.tick()
    now = utcnow()
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(StoredDay))
        k1 = session.scalar(
            select(func.sum(CameraDaySite.offline_s)).where(CameraDaySite.site_id == "k-1")
        )
    assert stored == len(day_store.settled_days(day_store.kept_since(now, TZ), now, now, TZ))
    assert k1 is not None
    assert k1 > 0


def test_a_logged_write_drops_the_days_it_meets_in_every_zone(
    sessions: sessionmaker[Session],
) -> None:
    """Days stored for two zones overlap in time: a write drops each zone's days it meets."""
    fleet(sessions)
    refresh(sessions)
    assert camera_days.refresh(sessions, NOW, "UTC") == 0
    with sessions.begin() as session:
        _late_outage(session)  # 2026-11-06 15:00-15:30 UTC: day 4 in Shanghai and in UTC
    with sessions.begin() as session:
        assert day_store.drop_stale(session, [CameraDaySite, DeviceDay]) == 2
    with sessions() as session:
        gone = {
            (tz, d)
            for tz in (TZ, "UTC")
            for d in day_store.settled_days(at(0), NOW, NOW, tz)
            if session.get(StoredDay, (tz, d)) is None
        }
    assert gone == {(TZ, dt.date(2026, 11, 6)), ("UTC", dt.date(2026, 11, 6))}
