"""Settled days' offline seconds, stored per device; a window reads them plus its ends counted now.

Counted time adds up over a partition of a window, so a window's offline seconds are those of
its whole local days, each computed once over the day alone and stored, plus its partial first
and last day counted on the spot. A day is stored once it has settled: ended, and an observed
run's grace (STALE_AFTER) past. Triggers (migration 0018) log the span of time of every write
that can change a stored day, whichever code writes it. Refresh (the ingester's tick, through
fangxin.trace.plan.camera_days) drops the stored days such a span meets and computes them
again; a reader finding a day of its window missing or touched counts the window whole.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, text, tuple_
from sqlalchemy.orm import Session

from fangxin.days import day_bounds
from fangxin.devices.models import Device, DeviceDay, Site, StoredDay, StoredDayStale
from fangxin.devices.observation import DOORS, STALE_AFTER, door_of, unknown_periods
from fangxin.devices.offline_passes import Clocks, offline_by_device
from fangxin.devices.uptime import Clock, Hours, Span

ONE_DAY = dt.timedelta(days=1)
REACH_S = 2 * 86400.0
# A day's stored figures are final once its end is this far past: until then a run last heard
# from just before midnight still counts as observing up to now, and now moves.
SETTLED = STALE_AFTER + dt.timedelta(seconds=30)
# Days kept before the year's start too: the overview's week and a 30-day report in January.
KEPT = dt.timedelta(days=31)


def settled_days(start: dt.datetime, end: dt.datetime, now: dt.datetime, tz: str) -> list[dt.date]:
    """Return the whole local days inside [start, min(end, now - SETTLED))."""
    day = start.astimezone(ZoneInfo(tz)).date()
    if day_bounds(day, tz)[0] < start:
        day += ONE_DAY
    limit = min(end, now - SETTLED)
    days = []
    while day_bounds(day, tz)[1] <= limit:
        days.append(day)
        day += ONE_DAY
    return days


def kept_since(now: dt.datetime, tz: str) -> dt.datetime:
    """Return where stored days begin: the local year's start (the KPIs), or KEPT back."""
    year, _ = day_bounds(dt.date(now.astimezone(ZoneInfo(tz)).year, 1, 1), tz)
    return min(year, now - KEPT)


def bounds(days: Sequence[dt.date], tz: str) -> tuple[dt.datetime, dt.datetime]:
    """Return the start of the first day and the end of the last."""
    return day_bounds(days[0], tz)[0], day_bounds(days[-1], tz)[1]


def drop_stale(session: Session, models: Sequence[Any]) -> int:
    """Consume the triggers' log: drop every stored day a logged span meets; return how many.

    models: those holding the stored days' rows (keyed by tz and day), dropped with them. The
    log is read as a stream (a bulk load logs millions of spans) and then emptied; on
    PostgreSQL it is locked meanwhile, so no span committed between the two is lost. The
    caller commits, soon: writers of offline periods wait for the lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE stored_day_stale IN EXCLUSIVE MODE"))
    stored = session.execute(
        select(StoredDay.start_s, StoredDay.end_s, StoredDay.tz, StoredDay.day).order_by(
            StoredDay.start_s
        )
    ).all()
    starts = [row.start_s for row in stored]
    met: set[int] = set()
    spans = session.execute(
        select(StoredDayStale.lo_s, StoredDayStale.hi_s).execution_options(yield_per=20000)
    )
    for lo, hi in spans:
        # the days starting before the span's end and ending after its start (a day lasts at
        # most 25 h, but days of two zones overlap: look back two days)
        for k in range(bisect_left(starts, lo - REACH_S), bisect_left(starts, hi)):
            if stored[k].end_s > lo:
                met.add(k)
    session.execute(delete(StoredDayStale))
    stale = [(stored[k].tz, stored[k].day) for k in sorted(met)]
    for n in range(0, len(stale), 500):
        keys = stale[n : n + 500]
        for model in (*models, StoredDay):
            session.execute(delete(model).where(tuple_(model.tz, model.day).in_(keys)))
    return len(stale)


def missing_days(session: Session, days: Sequence[dt.date], tz: str) -> list[dt.date]:
    """Return the days not stored, latest first."""
    if not days:
        return []
    have = set(
        session.scalars(
            select(StoredDay.day).where(
                StoredDay.tz == tz, StoredDay.day.between(days[0], days[-1])
            )
        )
    )
    return [d for d in reversed(days) if d not in have]


def stored_ready(session: Session, tz: str, days: Sequence[dt.date]) -> bool:
    """Tell whether every day is stored and no logged write since has touched them."""
    first, after = bounds(days, tz)
    stored = (
        select(func.count())
        .select_from(StoredDay)
        .where(StoredDay.tz == tz, StoredDay.day.between(days[0], days[-1]))
        .scalar_subquery()
    )
    touched = (
        select(StoredDayStale.id)
        .where(StoredDayStale.lo_s < after.timestamp(), StoredDayStale.hi_s > first.timestamp())
        .exists()
    )
    n, stale = session.execute(select(stored, touched)).one()
    return bool(n == len(days) and not stale)


def device_day_rows(
    session: Session, day: dt.date, now: dt.datetime, tz: str
) -> list[dict[str, object]]:
    """Return every device's offline seconds of a day (whole, business hours) as DeviceDay rows."""
    start, end = day_bounds(day, tz)
    window: Span = (start.timestamp(), end.timestamp())
    cutting = {
        d: [
            (a.timestamp(), b.timestamp())
            for a, b in unknown_periods(session, start, end, now, door=d)
        ]
        for d in DOORS
    }
    doors = {
        device: door_of(gb_id, parent)
        for device, gb_id, parent in session.execute(
            select(Device.id, Device.gb_id, Device.sip_parent)
        )
    }
    pairs = session.execute(select(Site.opens, Site.closes).distinct()).all()
    business: Clocks = {(o, c): Clock.of(Hours.parse(o, c), tz, start) for o, c in pairs}
    whole: Clocks = {None: Clock.of(None, tz, start)}
    now_s = now.timestamp()
    all_day = offline_by_device(session, whole, window, now_s, cutting, doors, [], [], None)
    in_hours = offline_by_device(session, business, window, now_s, cutting, doors, [], [], None)
    return [
        {
            "tz": tz,
            "day": day,
            "device_id": device,
            "offline_s": all_day.get(device, 0.0),
            "business_offline_s": in_hours.get(device, 0.0),
        }
        for device in sorted(set(all_day) | set(in_hours))
        if all_day.get(device) or in_hours.get(device)
    ]


def stored_offline(
    session: Session, tz: str, days: Sequence[dt.date], business_hours: bool, where: list[Any]
) -> dict[str, float]:
    """Return each device's stored offline seconds over the days (where: on Device and Site)."""
    column = DeviceDay.business_offline_s if business_hours else DeviceDay.offline_s
    chosen = select(Device.id).join(Site, Site.id == Device.site_id).where(*where)
    rows = session.execute(
        select(DeviceDay.device_id, func.sum(column))
        .where(DeviceDay.tz == tz, DeviceDay.day.between(days[0], days[-1]))
        .where(*[DeviceDay.device_id.in_(chosen)] if where else [])
        .group_by(DeviceDay.device_id)
    )
    return {device: float(seconds) for device, seconds in rows}
