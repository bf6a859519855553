"""Offline seconds of many devices over a window, counted in SQL: one pass per set of hours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Float, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from fangxin.devices.models import MQTT_DOOR, ConnectivityEvent, Device, Site
from fangxin.devices.observation import DOORS, door_clause
from fangxin.devices.uptime import Clock, Span

E = ConnectivityEvent
# A set of business hours (None: around the clock) -> its clock.
Clocks = dict[tuple[str, str] | None, Clock]


def offline_seconds(
    session: Session,
    clock: Clock,
    window: Span,
    now_s: float,
    unknown: Mapping[str, Sequence[Span]],
    door_of_device: Mapping[str, str],
    where: list[Any],
    ids: Sequence[str] | None = None,
) -> dict[str, float]:
    """Sum, per device, the counted offline seconds in the window its door observed.

    One grouped pass over the periods: each is cut to the window in SQL and summed, and so is
    its overlap with each unknown span (there are a few); each device then subtracts the
    overlaps with its own door's unknown time. Reading the periods once is the cost floor.
    """
    dialect = session.get_bind().dialect.name
    w0, w1 = window
    at: Any = E.at_s
    until: Any = E.until_s
    if dialect == "sqlite":
        # `+ 0` keeps SQLite's planner (given statistics) from skip-scanning on the times: it
        # reads the covering index for state = offline in device order, with nothing to sort.
        at, until = at + 0, until + 0
    scope = [E.state == "offline", at < w1, or_(E.until_s.is_(None), until > w0)]
    if ids is not None:  # a site's devices: the index is read for them alone, whatever the plan
        scope.append(E.device_id.in_(ids))
    elif where:  # unfiltered, the covering index is read in device order with nothing to join
        scope.append(E.device_id.in_(select(Device.id).join(Site).where(*where)))
    stop = func.coalesce(E.until_s, literal(now_s, Float))
    spans = sorted({u for door_spans in unknown.values() for u in door_spans})

    def counted(a: float, b: float) -> Any:
        # F(min(stop, b)) - F(max(at, a)), clipped before F as a CASE so that F reads the bare
        # column: SQLite does not share subexpressions, and F repeats its argument three times.
        ends = case(
            (E.until_s.is_(None), clock.sql(literal(min(now_s, b), Float), dialect)),
            (E.until_s < b, clock.sql(E.until_s, dialect)),
            else_=clock.sql(literal(b, Float), dialect),
        )
        starts = case(
            (E.at_s > a, clock.sql(E.at_s, dialect)), else_=clock.sql(literal(a, Float), dialect)
        )
        return ends - starts

    # FILTER, not a CASE inside the sum: the few periods an unknown span meets are the only
    # ones the aggregate steps through (SQLite >= 3.30 and PostgreSQL both have it).
    cuts = [func.sum(counted(us, ue)).filter(and_(E.at_s < ue, stop > us)) for us, ue in spans]
    rows = session.execute(
        select(E.device_id, func.sum(counted(w0, w1)), *cuts).where(*scope).group_by(E.device_id)
    )
    out = {}
    for device, seconds, *overlaps in rows:
        mine = set(unknown[door_of_device.get(device, MQTT_DOOR)])
        cut = sum(float(o or 0) for u, o in zip(spans, overlaps, strict=True) if u in mine)
        out[device] = float(seconds) - cut
    return out


def offline_seconds_sqlite(
    session: Session,
    clock: Clock,
    window: Span,
    now_s: float,
    unknown: Mapping[str, Sequence[Span]],
    where: list[Any],
) -> dict[str, float]:
    """Return what offline_seconds does, for a business-hours clock on SQLite.

    SQLite shares no subexpressions, so the clock's arithmetic reads each period's clipped
    ends, and their shifted times and days, from two subqueries that a LIMIT keeps unflattened
    (co-routines computing them once a row). They are correlated per device, so no GROUP BY
    sorts their rows; a CASE on the device's door picks the subquery subtracting that door's
    spans, in offline_seconds' order, so both doors take one statement. The spans lie inside
    the window (unknown_periods cuts them to it), so clipping the window's ends again to a span
    clips the period to it.
    """
    w0, w1 = window
    ends = case(
        (E.until_s.is_(None), literal(min(now_s, w1), Float)),
        (E.until_s < w1, E.until_s),
        else_=literal(w1, Float),
    )
    starts = case((E.at_s > w0, E.at_s), else_=literal(w0, Float))
    clipped = (
        select(ends.label("stop"), starts.label("start"))
        .where(E.device_id == Device.id, E.state == "offline", E.at_s < w1)
        .where(or_(E.until_s.is_(None), E.until_s > w0))
        .correlate(Device)
        .limit(-1)
        .subquery()
    )
    shifted = [clock.sql_shifted(clipped.c.stop), clock.sql_shifted(clipped.c.start)]
    periods = select(
        clipped.c.stop,
        clipped.c.start,
        *[t.label(f"l{n}") for n, t in enumerate(shifted)],
        *[clock.sql_days(t, "sqlite").label(f"d{n}") for n, t in enumerate(shifted)],
    )
    p = periods.limit(-1).subquery().c
    stop, start = clock.sql_counted(p.l0, p.d0, "sqlite"), clock.sql_counted(p.l1, p.d1, "sqlite")

    def counted(a: float, b: float) -> Any:
        ends = case((p.stop < b, stop), else_=clock.sql(literal(b, Float), "sqlite"))
        return ends - case((p.start > a, start), else_=clock.sql(literal(a, Float), "sqlite"))

    def per_device(spans: Sequence[Span]) -> Any:
        cut: Any = literal(0)
        for a, b in spans:
            overlap = func.sum(counted(a, b)).filter(and_(p.start < b, p.stop > a))
            cut = cut + func.coalesce(overlap, 0)
        return select(func.sum(stop - start) - cut).scalar_subquery()

    # Each device subtracts its own door's spans; doors cutting the same spans share a branch.
    doors: dict[tuple[Span, ...], list[str]] = {}
    for door in DOORS:
        doors.setdefault(tuple(sorted(set(unknown[door]))), []).append(door)
    *others, last = doors
    value: Any = per_device(last)
    if others:
        value = case(
            *[
                (or_(*[door_clause(d) for d in doors[spans]]), per_device(spans))
                for spans in others
            ],
            else_=value,
        )
    rows = session.execute(select(Device.id, value).join(Site).where(*where))
    return {device: float(seconds) for device, seconds in rows if seconds is not None}


def offline_by_device(
    session: Session,
    clocks: Clocks,
    window: Span,
    now_s: float,
    cutting: Mapping[str, Sequence[Span]],
    door_of_device: Mapping[str, str],
    device_where: list[Any],
    where: list[Any],
    ids: Sequence[str] | None,
) -> dict[str, float]:
    """Return each device's counted offline seconds in the window its door observed.

    One pass per set of hours, each over its own sites' devices only: the clock's arithmetic
    per period is most of the cost, so none is spent on a period another pass counts again.
    One set of hours (or none) is a plain scan. `where` chooses the devices by their site and
    kind (`device_where` also by Device.active); `ids` names a site's (few) devices: without
    statistics PostgreSQL joined the subquery to a scan of the whole fleet's periods.
    """
    sqlite = session.get_bind().dialect.name == "sqlite"
    out: dict[str, float] = {}
    for key, clock in clocks.items():
        hours = [Site.opens == key[0], Site.closes == key[1]] if key and len(clocks) > 1 else []
        if clock.hours is not None and sqlite:
            found = offline_seconds_sqlite(
                session, clock, window, now_s, cutting, [*device_where, *hours]
            )
        else:
            found = offline_seconds(
                session, clock, window, now_s, cutting, door_of_device, [*where, *hours], ids
            )
        out.update(found)
    return out
