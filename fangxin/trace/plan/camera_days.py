"""The kitchens' camera outages of closed days, stored per site; a window's open ends counted now.

Counted time adds up over a partition of the window, so a window's offline seconds are those of
its whole local days, computed once each by outage_seconds over the day alone and stored, plus
its partial first and last day counted on the spot. A day is stored once it has settled: ended,
and an observed run's grace (STALE_AFTER) past. Triggers (migration 0018) log the span of time
of every write that can change a stored day, whichever code writes it. Refresh (the
ingester's tick) drops the stored days such a span meets and computes them again; a reader
finding a day missing or touched counts its whole window on the spot.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.orm import Session

from fangxin.db.bulk import insert_ignore
from fangxin.devices.models import Site
from fangxin.devices.observation import STALE_AFTER
from fangxin.trace.plan.camera_outages import E, Outages, Spans, outage_seconds
from fangxin.trace.plan.hour_sets import HourSets
from fangxin.trace.plan.models import CameraDay, CameraDaySite, CameraDayStale

ONE_DAY = dt.timedelta(days=1)
Span = tuple[float, float]
# A day's stored figures are final once its end is this far past: until then a run last heard
# from just before midnight still counts as observing up to now, and now moves.
SETTLED = STALE_AFTER + dt.timedelta(seconds=30)
# Days kept before the year's start too: the overview's week (7 days) in early January.
KEPT = dt.timedelta(days=8)


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=zone)


def settled_days(start: dt.datetime, end: dt.datetime, now: dt.datetime, tz: str) -> list[dt.date]:
    """Return the whole local days inside [start, min(end, now - SETTLED))."""
    zone = ZoneInfo(tz)
    day = start.astimezone(zone).date()
    if _midnight(day, zone) < start:
        day += ONE_DAY
    limit = min(end, now - SETTLED)
    days = []
    while _midnight(day + ONE_DAY, zone) <= limit:
        days.append(day)
        day += ONE_DAY
    return days


def drop_stale(session: Session) -> int:
    """Consume the triggers' log: drop every stored day a logged span meets; return how many."""
    # DELETE ... RETURNING: a span logged while this runs stays for the next reader.
    spans = sorted(
        session.execute(
            delete(CameraDayStale).returning(CameraDayStale.lo_s, CameraDayStale.hi_s)
        ).all()
    )
    if not spans:
        return 0
    days = session.execute(select(CameraDay.tz, CameraDay.day, CameraDay.start_s, CameraDay.end_s))
    starts = [lo for lo, _ in spans]
    reach = [spans[0][1]]  # the latest end among the spans so far
    for _, hi in spans[1:]:
        reach.append(max(reach[-1], hi))
    stale = []
    for tz, day, start_s, end_s in days:
        # the last span starting before the day's end reaches past its start, or none does
        i = bisect_left(starts, end_s) - 1
        if i >= 0 and reach[i] > start_s:
            stale.append((tz, day))
    for i in range(0, len(stale), 500):
        keys = stale[i : i + 500]
        session.execute(
            delete(CameraDaySite).where(tuple_(CameraDaySite.tz, CameraDaySite.day).in_(keys))
        )
        session.execute(delete(CameraDay).where(tuple_(CameraDay.tz, CameraDay.day).in_(keys)))
    return len(stale)


def store_days(
    session: Session, days: Sequence[dt.date], now: dt.datetime, tz: str, limit: int | None = None
) -> int:
    """Compute and store up to limit of the settled days not stored yet, latest first.

    Return how many are still missing after this.
    """
    if not days:
        return 0
    have = set(
        session.scalars(
            select(CameraDay.day).where(
                CameraDay.tz == tz, CameraDay.day.between(days[0], days[-1])
            )
        )
    )
    missing = [d for d in reversed(days) if d not in have]
    if not missing:
        return 0
    zone = ZoneInfo(tz)
    # Days before the first outage on record have none: stored empty without a pass each.
    first = session.scalar(select(func.min(E.at_s)).where(E.state == "offline"))
    for day in missing[:limit]:
        start, end = _midnight(day, zone), _midnight(day + ONE_DAY, zone)
        found: Outages = {}
        if first is not None and first < end.timestamp():
            found = outage_seconds(session, start, end, now, tz=tz, business_hours=True)
        # Another worker may store the same day meanwhile: the same figures, either is kept.
        insert_ignore(
            session,
            CameraDay.__table__,
            [
                {
                    "tz": tz,
                    "day": day,
                    "start_s": start.timestamp(),
                    "end_s": end.timestamp(),
                    "computed_at": now,
                }
            ],
            ("tz", "day"),
        )
        rows = [
            {"tz": tz, "day": day, "site_id": site, "offline_s": off, "unknown_s": unknown}
            for site, (off, unknown) in found.items()
        ]
        if rows:
            insert_ignore(session, CameraDaySite.__table__, rows, ("tz", "day", "site_id"))
    return len(missing[limit:]) if limit is not None else 0


def kept_since(now: dt.datetime, tz: str) -> dt.datetime:
    """Return where stored days begin: the local year's start (the KPIs), or KEPT back."""
    zone = ZoneInfo(tz)
    year = _midnight(dt.date(now.astimezone(zone).year, 1, 1), zone)
    return min(year, now - KEPT)


def refresh(session: Session, now: dt.datetime, tz: str, limit: int | None = None) -> int:
    """Drop the stored days logged writes touched, store up to limit missing; return still missing.

    The ingester's tick calls it (a few days a tick, so a year's first fill never holds the
    database for long); the caller commits.
    """
    drop_stale(session)
    return store_days(session, settled_days(kept_since(now, tz), now, now, tz), now, tz, limit)


def _stored_ready(session: Session, tz: str, days: Sequence[dt.date], span: Span) -> bool:
    """Tell whether every day is stored and no logged write since has touched them."""
    stored = (
        select(func.count())
        .select_from(CameraDay)
        .where(CameraDay.tz == tz, CameraDay.day.between(days[0], days[-1]))
        .scalar_subquery()
    )
    touched = (
        select(CameraDayStale.id)
        .where(CameraDayStale.lo_s < span[1], CameraDayStale.hi_s > span[0])
        .exists()
    )
    n, stale = session.execute(select(stored, touched)).one()
    return bool(n == len(days) and not stale)


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
    if not days:
        return counted_now(start, end)
    zone = ZoneInfo(tz)
    first, after = _midnight(days[0], zone), _midnight(days[-1] + ONE_DAY, zone)
    if not _stored_ready(session, tz, days, (first.timestamp(), after.timestamp())):
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
    for a, b in ((start, first), (after, end)):
        for site, (off, unknown) in counted_now(a, b).items():
            was_off, was_unknown = out.get(site, (0.0, 0.0))
            out[site] = (was_off + off, was_unknown + unknown)
    return out
