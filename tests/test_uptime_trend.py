"""The daily uptime trend: periods split over the days they cross, scope, new devices."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fangxin.days import last_days
from fangxin.devices.models import ConnectivityEvent, Device, Site
from fangxin.devices.trend import daily_uptime

CST = dt.timezone(dt.timedelta(hours=8))
TODAY = dt.datetime(2026, 10, 10, tzinfo=CST)
NOW = TODAY + dt.timedelta(hours=12)  # half of today has happened


def at(day: int, hour: float) -> dt.datetime:
    """Return a local October time."""
    return dt.datetime(2026, 10, day, tzinfo=CST) + dt.timedelta(hours=hour)


def offline(device: str, start: dt.datetime, end: dt.datetime | None) -> ConnectivityEvent:
    """Return an offline period."""
    return ConnectivityEvent(
        device_id=device,
        state="offline",
        at=start,
        until=end,
        at_s=start.timestamp(),
        until_s=None if end is None else end.timestamp(),
        cause="timeout",
        recorded_at=start,
    )


@pytest.fixture
def fleet(sessions: sessionmaker[Session]) -> None:
    """Two kitchens; a camera each, the second registered mid-window; one retired camera."""
    with sessions.begin() as session:
        for site, district in (("k-1", "郏县"), ("k-2", "新华区")):
            session.add(
                Site(id=site, kind="kitchen", district=district, name=site, created_at=at(1, 0))
            )
        session.flush()
        for device, site, created, active in (
            ("cam-1", "k-1", at(1, 0), True),
            ("cam-2", "k-2", at(9, 12), True),
            ("cam-3", "k-1", at(1, 0), False),
        ):
            session.add(
                Device(
                    id=device,
                    site_id=site,
                    kind="camera",
                    interval_s=60,
                    active=active,
                    created_at=created,
                )
            )
        session.flush()
        session.add_all(
            [
                offline("cam-1", at(8, 1), at(8, 3)),  # 2 h on the 8th
                offline("cam-1", at(8, 23), at(10, 1)),  # 1 h, 24 h, 1 h
                offline("cam-1", at(10, 11), None),  # still offline: 1 h until now
                offline("cam-2", at(9, 23), at(10, 0)),  # ends on midnight: the 9th's
                offline("cam-3", at(1, 0), None),  # retired: not in the figures
                offline("cam-1", at(1, 0), at(2, 0)),  # before the window
            ]
        )


@pytest.mark.usefixtures("fleet")
def test_daily_uptime_splits_periods_over_the_days_they_cross(
    sessions: sessionmaker[Session],
) -> None:
    days = last_days(TODAY.astimezone(dt.UTC), 3)
    with sessions() as session:
        city = daily_uptime(session, days, NOW.astimezone(dt.UTC), [])
        county = daily_uptime(session, days, NOW.astimezone(dt.UTC), [Site.district == "郏县"])
    # the 8th: cam-1 alone (cam-2 came later), 3 h offline of 24
    # the 9th: cam-2 counts from the day it was registered; 24 h + 1 h offline of 48
    # the 10th: 12 h so far each; 1 h + 1 h offline of 24
    assert city == [round(21 / 24, 4), round(23 / 48, 4), round(22 / 24, 4)]
    assert county == [round(21 / 24, 4), 0.0, round(10 / 12, 4)]


def test_daily_uptime_of_an_empty_fleet_is_unknown(sessions: sessionmaker[Session]) -> None:
    days = last_days(TODAY.astimezone(dt.UTC), 2)
    with sessions() as session:
        assert daily_uptime(session, days, NOW.astimezone(dt.UTC), []) == [None, None]
