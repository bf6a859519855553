"""Cameras' and NVRs' counted seconds per site over a window, summed in SQL (grouped queries).

Counted time is business hours (each site's own) or the whole day; a device counts from its
registration. Offline seconds come from the connectivity events; time no door observed (the
ingester down) is neither online nor offline and is left out of both, as in the uptime report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from fangxin.devices.connectivity import ONLINE
from fangxin.devices.models import MQTT_DOOR, SIP_DOOR, Device, Site
from fangxin.devices.observation import door_clause
from fangxin.trace.plan.camera_days import offline_by_site
from fangxin.trace.plan.camera_outages import (
    Spans,
    at,
    compared,
    kitchen_cameras_scope,
    unknown_spans,
)
from fangxin.trace.plan.hour_sets import counted_py, counted_sql, epoch_sql, hour_sets, hours_table


@dataclass(frozen=True, slots=True)
class SiteSeconds:
    """Counted seconds of a site's cameras and NVRs over the window."""

    site_id: str
    district: str
    devices: int
    total_s: float
    offline_s: float

    @property
    def online_s(self) -> float:
        """Return counted seconds online (never negative)."""
        return max(self.total_s - self.offline_s, 0.0)

    @property
    def share(self) -> float | None:
        """Return the online share of counted time, None when nothing was counted."""
        return self.online_s / self.total_s if self.total_s > 0 else None


def _later_part(
    hours: Any,
    spans: Spans,
    created: Any,
    counted: Callable[[Any], Any],
    lo: Any,
    registered_at: Any,
) -> Any:
    """Return a device's unknown_part(created, w1) when registered in the window (None: no spans).

    Term for term the same floats, cheaper: a span's end is before the window's end, so its
    counted end is a column of the hours table; a device registered before the span (most of
    them) has the whole span unknown, its counted start a column too. Only a device registered
    inside a span works out its own counted time (clamped after counting: see kitchen_cameras).
    The tests compare the registration column
    with the span's datetimes: SQLite parses the column's text for each epoch it computes
    (0.4 us each), and a year's window had every camera parse it up to 11 times.
    """
    parts = []
    for j, span in enumerate(spans):
        start_c, end_c = hours.c[f"c{2 * j + 1}"], hours.c[f"c{2 * j + 2}"]
        since = end_c - lo(counted(created), start_c)
        whole = end_c - start_c
        parts.append(
            case(
                (
                    and_(door_clause(span.door), registered_at < at(span.until)),
                    case((registered_at <= at(span.since), whole), else_=since),
                ),
                else_=literal(0.0, Float),
            )
        )
    return sum(parts[1:], parts[0]) if parts else None


@dataclass(frozen=True, slots=True)
class Cameras:
    """Kitchens' cameras and NVRs: seconds per site; per district active and online now."""

    seconds: dict[str, SiteSeconds]
    now: dict[str, tuple[int, int]]


def _before(
    n: int, door: str, w: tuple[float, float], hours: tuple[float, float], spans: Spans
) -> tuple[float, float]:
    """Return counted and unknown seconds of n devices of a door registered before the window."""
    shift, per_day = hours
    total = n * (counted_py(w[1], shift, per_day) - counted_py(w[0], shift, per_day))
    unknown = n * sum(
        counted_py(u1, shift, per_day) - counted_py(u0, shift, per_day)
        for d, u0, u1, _, _ in spans
        if d == door
    )
    return total, unknown


def kitchen_cameras(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    tz: str,
    business_hours: bool,
    district: str | None = None,
) -> Cameras:
    """Return each kitchen's camera seconds over [start, end) cut at now, and the cameras now.

    The queries: the sets of business hours, each door's observed runs, one grouped pass over
    the devices (a count per site and door of those registered before the window, as they all
    count alike; the later ones summed one by one; the active and the online now), then the
    outages: the window's stored days and a pass over its partial first and last day
    (camera_days.offline_by_site); none per site or device.
    """
    dialect = session.get_bind().dialect.name
    lo = func.greatest if dialect == "postgresql" else func.max
    end = max(start, min(end, now))
    w0, w1 = start.timestamp(), end.timestamp()
    sets = hour_sets(session, tz, start, business_hours)
    # Each device's own door's unobserved time is unknown for it (as in the uptime report).
    spans = unknown_spans(session, start, end, now)
    # The window's end, the spans' bounds and the window's start, counted once per set of hours.
    # Counted time F never decreases, so F(max(t, u)) = max(F(t), F(u)): a time is clamped to
    # a bound after counting, against the bound's column, instead of before each of the
    # formula's three uses of it (SQLite evaluates each: 7 % of the outage pass's instructions).
    hours = hours_table(sets, [w1, *(u for s in spans for u in (s.u0, s.u1)), w0])
    at_w0 = hours.c[f"c{2 * len(spans) + 1}"]
    joined = and_(hours.c.opens == Site.opens, hours.c.closes == Site.closes)
    kitchens = kitchen_cameras_scope(district)

    def counted(t: Any) -> Any:
        return counted_sql(t, hours.c.shift, hours.c.per_day, dialect)

    registered_at = compared(Device.created_at, dialect)
    registered = registered_at < at(end)
    before, later = registered_at <= at(start), registered_at > at(start)
    created = epoch_sql(Device.created_at, dialect)
    later_unknown = _later_part(hours, spans, created, counted, lo, registered_at)
    deadline = compared(Device.deadline, dialect)
    live = and_(Device.conn_state == ONLINE, or_(Device.deadline.is_(None), deadline > at(now)))
    devices = session.execute(
        select(
            Site.id,
            Site.district,
            Site.opens,
            Site.closes,
            *(
                func.count(case((and_(registered, before, door_clause(door)), 1)))
                for door in (MQTT_DOOR, SIP_DOOR)
            ),
            func.count(case((and_(registered, later), 1))),
            # within(created, w1): the window's end is a point of the hours table
            func.sum(case((and_(registered, later), hours.c.c0 - lo(counted(created), at_w0)))),
            literal(0.0, Float)
            if later_unknown is None
            else func.sum(case((and_(registered, later), later_unknown))),
            func.count(Device.id),
            func.sum(case((live, 1), else_=0)),
        )
        .select_from(Device)
        .join(Site, Site.id == Device.site_id)
        .join(hours, joined)
        .where(*kitchens)
        .group_by(Site.id, Site.district, Site.opens, Site.closes)
        .order_by(Site.id)  # the district sums add sites up in this order
    ).all()
    totals: dict[str, tuple[str, int, float, float]] = {}
    later_only: dict[str, tuple[str, int, float, float]] = {}
    now_counts: dict[str, tuple[int, int]] = {}
    for (
        site_id,
        site_district,
        opens,
        closes,
        *counts,
        later_s,
        unknown_s,
        n_now,
        live_n,
    ) in devices:
        active, online = now_counts.get(site_district, (0, 0))
        now_counts[site_district] = (active + int(n_now), online + int(live_n or 0))
        n, total, unknown = 0, 0.0, 0.0
        # In the order the per-door groups came in (MQTT first), then the later devices.
        for door, m in zip((MQTT_DOOR, SIP_DOOR), counts[:2], strict=True):
            if m:
                t, u = _before(m, door, (w0, w1), sets[(opens, closes)], spans)
                n, total, unknown = n + m, total + t, unknown + u
        if counts[2]:
            n, total = n + counts[2], total + float(later_s or 0)
            unknown += float(unknown_s or 0)
        if counts[0] or counts[1]:
            totals[site_id] = (site_district, n, total, unknown)
        elif counts[2]:  # sites with only later devices came last (dict order: district sums)
            later_only[site_id] = (site_district, n, total, unknown)
    totals.update(later_only)

    # The outages: stored closed days, the rest counted now (camera_days).
    offline = offline_by_site(
        session,
        start,
        end,
        now,
        tz=tz,
        business_hours=business_hours,
        district=district,
        sets=sets,
        spans=spans,
    )
    out = {}
    for site_id, (site_district, n, total, u_total) in totals.items():
        off, u_off = offline.get(site_id, (0.0, 0.0))
        out[site_id] = SiteSeconds(
            site_id, site_district, int(n), max(total - u_total, 0.0), max(off - u_off, 0.0)
        )
    return Cameras(out, now_counts)


def site_seconds(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    tz: str,
    business_hours: bool,
    district: str | None = None,
) -> dict[str, SiteSeconds]:
    """Return each kitchen's camera seconds over [start, end) cut at now (see kitchen_cameras)."""
    return kitchen_cameras(
        session, start, end, now, tz=tz, business_hours=business_hours, district=district
    ).seconds
