"""Cameras' and NVRs' counted seconds per site over a window, summed in SQL (grouped queries).

Counted time is business hours (each site's own) or the whole day; a device counts from its
registration. Offline seconds come from the connectivity events; time no door observed (the
ingester down) is neither online nor offline and is left out of both, as in the uptime report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, and_, cast, func, literal, or_, select, union_all
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

    The queries: the sets of business hours, totals, outages, each door's observed runs, and
    the unknown time of devices and of outages; none runs per site or per device.
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

    def counted(t: Any) -> Any:
        return _counted(t, hours.c.shift, hours.c.per_day, dialect)

    born = lo(epoch_sql(Device.created_at, dialect), literal(w0, Float))
    totals = session.execute(
        select(Site.id, Site.district, func.count(Device.id), func.sum(counted(w1) - counted(born)))
        .select_from(Device)
        .join(Site, Site.id == Device.site_id)
        .join(hours, joined)
        .where(*scope)
        .group_by(Site.id, Site.district)
    ).all()
    period_end = func.coalesce(E.until_s, literal(now.timestamp(), Float))
    a, b = lo(E.at_s, literal(w0, Float)), hi(period_end, literal(w1, Float))
    offline: dict[str, float] = dict(
        session.execute(
            select(Site.id, func.sum(counted(b) - counted(a)))
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
        ).all()
    )
    unknown = _unknown_seconds(session, start, end, now, hours, joined, scope, counted, lo, hi)
    out = {}
    for site_id, site_district, n, total in totals:
        u_total, u_off = unknown.get(site_id, (0.0, 0.0))
        out[site_id] = SiteSeconds(
            site_id,
            site_district,
            int(n),
            max(float(total or 0) - u_total, 0.0),
            max(float(offline.get(site_id) or 0) - u_off, 0.0),
        )
    return out


def _unknown_seconds(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    hours: Any,
    joined: Any,
    scope: list[Any],
    counted: Any,
    lo: Any,
    hi: Any,
) -> dict[str, tuple[float, float]]:
    """Per site: counted seconds no door observed, of the devices' time and of their outages."""
    spans = [
        (door, a.timestamp(), b.timestamp())
        for door in DOORS
        for a, b in unknown_periods(session, start, end, now, door=door)
    ]
    if not spans:
        return {}
    dialect = session.get_bind().dialect.name
    table = union_all(
        *(
            select(
                literal(door).label("door"),
                literal(a, Float).label("u0"),
                literal(b, Float).label("u1"),
            )
            for door, a, b in spans
        )
    ).subquery("unknown")
    # Each device's own door's unobserved time is unknown for it (as in the uptime report).
    own_door = or_(*(and_(table.c.door == door, door_clause(door)) for door in DOORS))
    born = lo(epoch_sql(Device.created_at, dialect), table.c.u0)
    in_devices: dict[str, float] = dict(
        session.execute(
            select(Site.id, func.sum(counted(table.c.u1) - counted(born)))
            .select_from(Device)
            .join(Site, Site.id == Device.site_id)
            .join(hours, joined)
            .join(table, and_(own_door, epoch_sql(Device.created_at, dialect) < table.c.u1))
            .where(*scope)
            .group_by(Site.id)
        ).all()
    )
    period_end = func.coalesce(E.until_s, literal(now.timestamp(), Float))
    a, b = lo(E.at_s, table.c.u0), hi(period_end, table.c.u1)
    in_outages: dict[str, float] = dict(
        session.execute(
            select(Site.id, func.sum(counted(b) - counted(a)))
            .select_from(E)
            .join(Device, Device.id == E.device_id)
            .join(Site, Site.id == Device.site_id)
            .join(hours, joined)
            .join(
                table,
                and_(
                    own_door,
                    E.at_s < table.c.u1,
                    or_(E.until_s.is_(None), E.until_s > table.c.u0),
                ),
            )
            .where(*scope, E.state == "offline")
            .group_by(Site.id)
        ).all()
    )
    return {
        site: (float(in_devices.get(site) or 0), float(in_outages.get(site) or 0))
        for site in set(in_devices) | set(in_outages)
    }
