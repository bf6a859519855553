"""Kitchens' camera outages per site on stored days (fangxin.devices.day_store), and refresh.

A settled day is computed once and stored whole: its devices' offline seconds (DeviceDay, for
the uptime report) and its kitchens' camera seconds (CameraDaySite, for the dashboard), under
one StoredDay row. A window reads its stored days plus its ends counted now.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.days import day_bounds
from fangxin.db.bulk import insert_ignore
from fangxin.devices.day_store import (
    bounds,
    device_day_rows,
    drop_stale,
    kept_since,
    missing_days,
    settled_days,
    stored_ready,
)
from fangxin.devices.models import DeviceDay, Site, StoredDay
from fangxin.trace.plan.camera_outages import E, Outages, Spans, outage_seconds
from fangxin.trace.plan.hour_sets import HourSets
from fangxin.trace.plan.models import CameraDaySite


def store_day(session: Session, day: dt.date, now: dt.datetime, tz: str, any_outage: bool) -> None:
    """Compute a settled day's rows and store them (nothing stored where none had an outage)."""
    start, end = day_bounds(day, tz)
    sites: Outages = {}
    devices: list[dict[str, object]] = []
    if any_outage:
        sites = outage_seconds(session, start, end, now, tz=tz, business_hours=True)
        devices = device_day_rows(session, day, now, tz)
    # Another process may store the same day meanwhile: the same figures, either is kept.
    marker = {"tz": tz, "day": day, "start_s": start.timestamp(), "end_s": end.timestamp()}
    insert_ignore(session, StoredDay.__table__, [{**marker, "computed_at": now}], ("tz", "day"))
    rows = [
        {"tz": tz, "day": day, "site_id": site, "offline_s": off, "unknown_s": unknown}
        for site, (off, unknown) in sites.items()
    ]
    if rows:
        insert_ignore(session, CameraDaySite.__table__, rows, ("tz", "day", "site_id"))
    if devices:
        insert_ignore(session, DeviceDay.__table__, devices, ("tz", "day", "device_id"))


def refresh(
    sessions: sessionmaker[Session], now: dt.datetime, tz: str, limit: int | None = None
) -> int:
    """Drop the stored days logged writes touched, store up to limit missing; return still missing.

    The ingester's tick calls it. A maintenance step, it owns its transactions, each short: one
    to consume the log, then one per day stored (its passes only read; on SQLite the write
    lock is taken by the inserts at the end, so ingestion waits milliseconds, not a pass).
    """
    with sessions.begin() as session:
        drop_stale(session, [CameraDaySite, DeviceDay])
    with sessions() as session:
        missing = missing_days(session, settled_days(kept_since(now, tz), now, now, tz), tz)
        if not missing:
            return 0
        # Days before the first outage on record have none: stored empty without a pass each.
        first = session.scalar(select(func.min(E.at_s)).where(E.state == "offline"))
    quiet = [d for d in missing if first is None or first >= day_bounds(d, tz)[1].timestamp()]
    stored_quiet = frozenset(quiet)
    with sessions.begin() as session:  # no pass to run: all at once, whatever the limit
        for day in quiet:
            store_day(session, day, now, tz, any_outage=False)
    busy = [d for d in missing if d not in stored_quiet]
    for day in busy[:limit]:
        with sessions.begin() as session:
            store_day(session, day, now, tz, any_outage=True)
    return len(busy[limit:]) if limit is not None else 0


def offline_by_site(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    tz: str,
    business_hours: bool,
    district: str | None = None,
    sets: HourSets | None = None,
    spans: Spans | None = None,
) -> Outages:
    """Return what outage_seconds does for the window: its stored days plus its ends counted now.

    Read only: the days are stored by refresh (the ingester's tick). While any is missing, or a
    logged write has touched one since, the whole window is counted now. Stored days are
    business hours; around the clock the window is counted whole.
    """
    end = max(start, min(end, now))

    def counted_now(a: dt.datetime, b: dt.datetime) -> Outages:
        return outage_seconds(
            session,
            a,
            b,
            now,
            tz=tz,
            business_hours=business_hours,
            district=district,
            sets=sets,
            spans=spans,
        )

    days = settled_days(start, end, now, tz) if business_hours else []
    if not days or not stored_ready(session, tz, days):
        return counted_now(start, end)
    stored = (
        select(
            CameraDaySite.site_id,
            func.sum(CameraDaySite.offline_s),
            func.sum(CameraDaySite.unknown_s),
        )
        .where(CameraDaySite.tz == tz, CameraDaySite.day.between(days[0], days[-1]))
        .group_by(CameraDaySite.site_id)
    )
    if district:
        stored = stored.join(Site, Site.id == CameraDaySite.site_id).where(
            Site.district == district
        )
    out = {site: (float(off), float(unknown)) for site, off, unknown in session.execute(stored)}
    first, after = bounds(days, tz)
    for a, b in ((start, first), (after, end)):
        for site, (off, unknown) in counted_now(a, b).items():
            was_off, was_unknown = out.get(site, (0.0, 0.0))
            out[site] = (was_off + off, was_unknown + unknown)
    return out
