"""Cameras' and NVRs' counted seconds per site over a window, summed in SQL (grouped queries).

Counted time is business hours (each site's own) or the whole day; a device counts from its
registration. Offline seconds come from the connectivity events; time no door observed (the
ingester down) is neither online nor offline and is left out of both, as in the uptime report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from fangxin.devices.models import ConnectivityEvent, Device, Site
from fangxin.devices.observation import DOORS, door_clause, unknown_periods
from fangxin.devices.uptime import DAY, Clock, Hours

CAMERA_KINDS = ("camera", "nvr")
E = ConnectivityEvent


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


def epoch_sql(column: Any, dialect: str) -> Any:
    """Return a datetime column as epoch seconds in SQL."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", column), Float)
    return (func.julianday(column) - 2440587.5) * 86400.0


def _counted(t: Any, shift: Any, per_day: Any, dialect: str) -> Any:
    """Return Clock.cumulative in SQL with the hours as columns (see fangxin.devices.uptime)."""
    shifted = t + shift
    if dialect == "postgresql":
        days: Any = func.floor(shifted / DAY)
        return days * per_day + func.least(shifted - days * DAY, per_day)
    days = cast(shifted / DAY, Integer)  # CAST truncates: floor for our positive times
    return days * per_day + func.min(shifted - days * DAY, per_day)


def _hours_table(session: Session, tz: str, start: dt.datetime, business: bool) -> Any:
    """Return a derived table of every set of hours kitchens keep: shift and counted seconds."""
    pairs: list[tuple[str, str]] = [
        (o, c) for o, c in session.execute(select(Site.opens, Site.closes).distinct())
    ] or [("00:00", "00:00")]
    rows = []
    for opens, closes in pairs:
        clock = Clock.of(Hours.parse(opens, closes) if business else None, tz, start)
        shift = clock.offset_s - (clock.hours.opens if clock.hours else 0)
        per_day = clock.hours.per_day if clock.hours else DAY
        rows.append(
            select(
                literal(opens).label("opens"),
                literal(closes).label("closes"),
                literal(float(shift), Float).label("shift"),
                literal(float(per_day), Float).label("per_day"),
            )
        )
    return union_all(*rows).subquery("hours")


def _unknown_spans(
    session: Session, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> list[tuple[Any, float, float]]:
    """Return (whose door, start, end) of each door's unobserved spans, as epoch seconds."""
    return [
        (door_clause(door), a.timestamp(), b.timestamp())
        for door in DOORS
        for a, b in unknown_periods(session, start, end, now, door=door)
    ]


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
    """Return each kitchen's camera seconds over [start, end) cut at now, in a fixed few queries.

    The queries: the sets of business hours, each door's observed runs, then one grouped pass
    over the devices (their counted time and its unobserved part) and one over the outages
    (their counted time and its unobserved part); none runs per site or per device.
    """
    dialect = session.get_bind().dialect.name
    lo, hi = (func.greatest, func.least) if dialect == "postgresql" else (func.max, func.min)
    end = max(start, min(end, now))
    w0, w1 = start.timestamp(), end.timestamp()
    hours = _hours_table(session, tz, start, business_hours)
    joined = and_(hours.c.opens == Site.opens, hours.c.closes == Site.closes)
    scope = [
        Site.kind == "kitchen",
        Device.kind.in_(CAMERA_KINDS),
        Device.active.is_(True),
        Device.created_at < end,
        *([Site.district == district] if district else []),
    ]
    # Each device's own door's unobserved time is unknown for it (as in the uptime report).
    spans = _unknown_spans(session, start, end, now)

    def counted(t: Any) -> Any:
        return _counted(t, hours.c.shift, hours.c.per_day, dialect)

    def within(a: Any, b: Any) -> Any:
        return counted(hi(b, literal(w1, Float))) - counted(lo(a, literal(w0, Float)))

    def unknown_part(a: Any, b: Any, overlaps: Any) -> Any:
        """Return the counted part of [a, b) its device's door did not observe (0 if none)."""
        parts = [
            case(
                (
                    and_(mine, overlaps(u0, u1)),
                    counted(hi(b, literal(u1, Float))) - counted(lo(a, literal(u0, Float))),
                ),
                else_=literal(0.0, Float),
            )
            for mine, u0, u1 in spans
        ]
        return func.sum(sum(parts[1:], parts[0])) if parts else literal(0.0, Float)

    created = epoch_sql(Device.created_at, dialect)
    far = literal(w1, Float)  # a device's time runs to the window's end
    totals = session.execute(
        select(
            Site.id,
            Site.district,
            func.count(Device.id),
            func.sum(within(created, far)),
            unknown_part(created, far, lambda u0, u1: created < u1),
        )
        .select_from(Device)
        .join(Site, Site.id == Device.site_id)
        .join(hours, joined)
        .where(*scope)
        .group_by(Site.id, Site.district)
    ).all()
    stop = func.coalesce(E.until_s, literal(now.timestamp(), Float))
    offline = {
        site: (float(off or 0), float(u_off or 0))
        for site, off, u_off in session.execute(
            select(
                Site.id,
                func.sum(within(E.at_s, stop)),
                unknown_part(E.at_s, stop, lambda u0, u1: and_(E.at_s < u1, stop > u0)),
            )
            .select_from(E)
            .join(Device, Device.id == E.device_id)
            .join(Site, Site.id == Device.site_id)
            .join(hours, joined)
            .where(
                *scope,
                E.state == "offline",
                E.at_s < w1,
                or_(E.until_s.is_(None), E.until_s > w0),
            )
            .group_by(Site.id)
        )
    }
    out = {}
    for site_id, site_district, n, total, u_total in totals:
        off, u_off = offline.get(site_id, (0.0, 0.0))
        out[site_id] = SiteSeconds(
            site_id,
            site_district,
            int(n),
            max(float(total or 0) - float(u_total or 0), 0.0),
            max(off - u_off, 0.0),
        )
    return out
