"""Kitchens' cameras' offline seconds per site over a window: one grouped pass over the outages.

Counted time is business hours (each site's own) or the whole day; time no door observed (the
ingester down) is neither online nor offline: each period's unobserved part is summed apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import Float, Text, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from fangxin.devices.models import CAMERA_KINDS, ConnectivityEvent, Device, Site
from fangxin.devices.observation import DOORS, door_clause, unknown_periods
from fangxin.trace.plan.hour_sets import HourSets, counted_sql, hour_sets, hours_table

E = ConnectivityEvent
# Per site: counted offline seconds, and the part of them its cameras' doors did not observe.
Outages = dict[str, tuple[float, float]]


class Span(NamedTuple):
    """A door's unobserved span: its bounds as epoch seconds and as datetimes."""

    door: str
    u0: float
    u1: float
    since: dt.datetime
    until: dt.datetime


Spans = list[Span]


def unknown_spans(
    session: Session, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> Spans:
    """Return each door's unobserved spans."""
    return [
        Span(door, a.timestamp(), b.timestamp(), a, b)
        for door in DOORS
        for a, b in unknown_periods(session, start, end, now, door=door)
    ]


def compared(column: Any, dialect: str) -> Any:
    """Return a datetime column as an operand to compare with times given by at().

    On SQLite the column is compared as the text it is stored as: its declared type gives it
    NUMERIC affinity, so a comparison with a bound time first tried to read both as numbers
    (sqlite3AtoF was a fifth of the devices pass's instructions). Same text format, same order.
    """
    return cast(column, Text) if dialect == "sqlite" else column


def at(t: dt.datetime) -> Any:
    """Return a time bound as the devices' datetime columns store it."""
    return literal(t, Device.created_at.type)


def kitchen_cameras_scope(district: str | None) -> list[Any]:
    """Return the clauses choosing kitchens' active cameras and NVRs (of a district)."""
    return [
        Site.kind == "kitchen",
        Device.kind.in_(CAMERA_KINDS),
        Device.active.is_(True),
        *([Site.district == district] if district else []),
    ]


def outage_seconds(
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
    """Return per kitchen its cameras' counted offline seconds in [start, end) cut at now.

    Queries: the sets of hours and each door's observed runs (unless given: spans of a window
    holding this one), one grouped pass over the periods (counted time and its unobserved
    part); none per site or device.
    """
    end = max(start, min(end, now))
    if end <= start:
        return {}
    dialect = session.get_bind().dialect.name
    lo, hi = (func.greatest, func.least) if dialect == "postgresql" else (func.max, func.min)
    w0, w1 = start.timestamp(), end.timestamp()
    if sets is None:
        sets = hour_sets(session, tz, start, business_hours)
    if spans is None:
        spans = unknown_spans(session, start, end, now)
    else:  # cut to this window, as unknown_periods over it would
        spans = [
            Span(s.door, max(s.u0, w0), min(s.u1, w1), max(s.since, start), min(s.until, end))
            for s in spans
            if s.u0 < w1 and s.u1 > w0
        ]
    # Counted time F never decreases, so F(max(t, u)) = max(F(t), F(u)): a time is clamped to
    # a bound after counting, against the bound's column (see camera_time.kitchen_cameras).
    hours = hours_table(sets, [w1, *(u for s in spans for u in (s.u0, s.u1)), w0])
    at_w0 = hours.c[f"c{2 * len(spans) + 1}"]
    joined = and_(hours.c.opens == Site.opens, hours.c.closes == Site.closes)

    def counted(t: Any) -> Any:
        return counted_sql(t, hours.c.shift, hours.c.per_day, dialect)

    def within(a: Any, b: Any) -> Any:
        return hi(counted(b), hours.c.c0) - lo(counted(a), at_w0)

    def unknown_part(a: Any, b: Any) -> Any:
        """Return the counted part of [a, b) its device's door did not observe (0 if none)."""
        parts = [
            case(
                (
                    and_(door_clause(door), a < u1, b > u0),
                    hi(counted(b), hours.c[f"c{2 * j + 2}"])
                    - lo(counted(a), hours.c[f"c{2 * j + 1}"]),
                ),
                else_=literal(0.0, Float),
            )
            for j, (door, u0, u1, _, _) in enumerate(spans)
        ]
        return func.sum(sum(parts[1:], parts[0])) if parts else literal(0.0, Float)

    stop = func.coalesce(E.until_s, literal(now.timestamp(), Float))
    return {
        site: (float(off or 0), float(u_off or 0))
        for site, off, u_off in session.execute(
            select(Site.id, func.sum(within(E.at_s, stop)), unknown_part(E.at_s, stop))
            .select_from(E)
            .join(Device, Device.id == E.device_id)
            .join(Site, Site.id == Device.site_id)
            .join(hours, joined)
            .where(
                *kitchen_cameras_scope(district),
                Device.created_at < end,
                E.state == "offline",
                E.at_s < w1,
                or_(E.until_s.is_(None), E.until_s > w0),
            )
            .group_by(Site.id)
        )
    }
