"""Cameras' and NVRs' counted seconds per site over a window, summed in SQL (grouped queries).

Counted time is business hours (each site's own) or the whole day; a device counts from its
registration. Offline seconds come from the connectivity events; time no door observed (the
ingester down) is neither online nor offline and is left out of both, as in the uptime report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from fangxin.devices.models import MQTT_DOOR, SIP_DOOR, ConnectivityEvent, Device, Site
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


HourSets = dict[tuple[str, str], tuple[float, float]]


def _hour_sets(session: Session, tz: str, start: dt.datetime, business: bool) -> HourSets:
    """Return every set of hours kitchens keep: (opens, closes) -> (shift, counted per day)."""
    pairs: list[tuple[str, str]] = [
        (o, c) for o, c in session.execute(select(Site.opens, Site.closes).distinct())
    ] or [("00:00", "00:00")]
    out = {}
    for opens, closes in pairs:
        clock = Clock.of(Hours.parse(opens, closes) if business else None, tz, start)
        shift = clock.offset_s - (clock.hours.opens if clock.hours else 0)
        out[(opens, closes)] = (float(shift), float(clock.hours.per_day if clock.hours else DAY))
    return out


def _hours_table(sets: HourSets, points: Sequence[float] = ()) -> Any:
    """Return the sets of hours as a derived table to join sites on.

    Column c{i} holds the counted time at points[i] under each set of hours (_counted_py, the
    same float as _counted would give in SQL), so a query reads it instead of working it out.
    """
    rows = [
        select(
            literal(opens).label("opens"),
            literal(closes).label("closes"),
            literal(shift, Float).label("shift"),
            literal(per_day, Float).label("per_day"),
            *(
                literal(_counted_py(t, shift, per_day), Float).label(f"c{i}")
                for i, t in enumerate(points)
            ),
        )
        for (opens, closes), (shift, per_day) in sets.items()
    ]
    return union_all(*rows).subquery("hours")


def _counted_py(t: float, shift: float, per_day: float) -> float:
    """Return _counted in Python, operation for operation (the same float results)."""
    shifted = t + shift
    days = int(shifted / DAY)
    return days * per_day + min(shifted - days * DAY, per_day)


def _unknown_spans(
    session: Session, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> list[tuple[Any, float, float]]:
    """Return (whose door, start, end) of each door's unobserved spans, as epoch seconds."""
    return [
        (door, a.timestamp(), b.timestamp())
        for door in DOORS
        for a, b in unknown_periods(session, start, end, now, door=door)
    ]


def _later_part(
    hours: Any,
    spans: list[tuple[Any, float, float]],
    created: Any,
    counted: Callable[[Any], Any],
    lo: Any,
) -> Any:
    """Return unknown_part(created, w1) of site_seconds for devices registered in the window.

    Term for term the same floats, cheaper: a span's end is before the window's end, so its
    counted end is a column of the hours table; a device registered before the span (most of
    them) has the whole span unknown, its counted start a column too. Only a device registered
    inside a span works out its own counted time.
    """
    parts = []
    for j, (door, u0, u1) in enumerate(spans):
        start_c, end_c = hours.c[f"c{2 * j + 1}"], hours.c[f"c{2 * j + 2}"]
        since = end_c - counted(lo(created, literal(u0, Float)))
        whole = end_c - start_c
        parts.append(
            case(
                (
                    and_(door_clause(door), created < u1),
                    case((created <= u0, whole), else_=since),
                ),
                else_=literal(0.0, Float),
            )
        )
    return func.sum(sum(parts[1:], parts[0])) if parts else literal(0.0, Float)


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

    The queries: the sets of business hours, each door's observed runs, a count of the devices
    registered before the window (they count alike), one grouped pass over the later ones and
    one over the outages (counted time and its unobserved part); none per site or device.
    """
    dialect = session.get_bind().dialect.name
    lo, hi = (func.greatest, func.least) if dialect == "postgresql" else (func.max, func.min)
    end = max(start, min(end, now))
    w0, w1 = start.timestamp(), end.timestamp()
    sets = _hour_sets(session, tz, start, business_hours)
    # Each device's own door's unobserved time is unknown for it (as in the uptime report).
    spans = _unknown_spans(session, start, end, now)
    # The window's end and the spans' bounds, counted once per set of hours (see _later_part).
    hours = _hours_table(sets, [w1, *(u for _, u0, u1 in spans for u in (u0, u1))])
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

    def within(a: Any, b: Any) -> Any:
        return counted(hi(b, literal(w1, Float))) - counted(lo(a, literal(w0, Float)))

    def unknown_part(a: Any, b: Any, overlaps: Any) -> Any:
        """Return the counted part of [a, b) its device's door did not observe (0 if none)."""
        parts = [
            case(
                (
                    and_(door_clause(door), overlaps(u0, u1)),
                    counted(hi(b, literal(u1, Float))) - counted(lo(a, literal(u0, Float))),
                ),
                else_=literal(0.0, Float),
            )
            for door, u0, u1 in spans
        ]
        return func.sum(sum(parts[1:], parts[0])) if parts else literal(0.0, Float)

    totals: dict[str, tuple[str, int, float, float]] = {}
    # Devices registered before the window all count alike: a count per site, hours and door.
    sip = door_clause(SIP_DOOR).label("sip")
    for site_id, site_district, opens, closes, is_sip, n in session.execute(
        select(Site.id, Site.district, Site.opens, Site.closes, sip, func.count(Device.id))
        .select_from(Device)
        .join(Site, Site.id == Device.site_id)
        .where(*scope, Device.created_at <= start)
        .group_by(Site.id, Site.district, Site.opens, Site.closes, sip)
    ):
        if (opens, closes) not in sets:
            continue
        shift, per_day = sets[(opens, closes)]
        door = SIP_DOOR if is_sip else MQTT_DOOR
        total = n * (_counted_py(w1, shift, per_day) - _counted_py(w0, shift, per_day))
        unknown = n * sum(
            _counted_py(u1, shift, per_day) - _counted_py(u0, shift, per_day)
            for d, u0, u1 in spans
            if d == door
        )
        _, n0, t0, k0 = totals.get(site_id, (site_district, 0, 0.0, 0.0))
        totals[site_id] = (site_district, n0 + n, t0 + total, k0 + unknown)
    created = epoch_sql(Device.created_at, dialect)
    from_created = lo(created, literal(w0, Float))
    for site_id, site_district, n, total, unknown in session.execute(
        select(
            Site.id,
            Site.district,
            func.count(Device.id),
            # within(created, w1): the window's end is a point of the hours table
            func.sum(hours.c.c0 - counted(from_created)),
            _later_part(hours, spans, created, counted, lo),
        )
        .select_from(Device)
        .join(Site, Site.id == Device.site_id)
        .join(hours, joined)
        .where(*scope, Device.created_at > start)
        .group_by(Site.id, Site.district)
    ):
        _, n0, t0, k0 = totals.get(site_id, (site_district, 0, 0.0, 0.0))
        totals[site_id] = (site_district, n0 + n, t0 + float(total or 0), k0 + float(unknown or 0))
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
    for site_id, (site_district, n, total, u_total) in totals.items():
        off, u_off = offline.get(site_id, (0.0, 0.0))
        out[site_id] = SiteSeconds(
            site_id,
            site_district,
            int(n),
            max(total - u_total, 0.0),
            max(off - u_off, 0.0),
        )
    return out
