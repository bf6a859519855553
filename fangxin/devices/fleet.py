"""Uptime figures of many devices at once: offline seconds summed in SQL, the rest in Python."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from fangxin.devices.connectivity import online_now
from fangxin.devices.models import MQTT_DOOR, ConnectivityEvent, Device, Site
from fangxin.devices.observation import DOORS, door_clause, door_of, unknown_periods
from fangxin.devices.uptime import Clock, Figures, Hours, Span, unknown_seconds

E = ConnectivityEvent


@dataclass(frozen=True, slots=True)
class Filters:
    """Which devices a report covers."""

    district: str | None = None
    category: str | None = None
    kind: str | None = None
    site: str | None = None

    def sites(self) -> list[Any]:
        """Return the conditions on Site."""
        out: list[Any] = []
        if self.district:
            out.append(Site.district == self.district)
        if self.category:
            out.append(or_(Site.category == self.category, Site.kind == self.category))
        if self.site:
            out.append(Site.id == self.site)
        return out


@dataclass(frozen=True, slots=True)
class DeviceFigures:
    """A device's figures over the window and its state now."""

    device_id: str
    site_id: str
    kind: str
    online_now: bool
    since: dt.datetime | None
    figures: Figures


@dataclass(frozen=True, slots=True)
class Fleet:
    """Sites and device figures of a report, with the unknown periods of the window.

    `unknown` is when no door observed; `unknown_by_door` is each door's own (its devices').
    """

    start: dt.datetime
    end: dt.datetime
    sites: list[Site]
    devices: list[DeviceFigures]
    unknown: list[tuple[dt.datetime, dt.datetime]]
    unknown_by_door: dict[str, list[tuple[dt.datetime, dt.datetime]]]


def _offline_seconds(
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


def _offline_seconds_sqlite(
    session: Session,
    clock: Clock,
    window: Span,
    now_s: float,
    unknown: Mapping[str, Sequence[Span]],
    where: list[Any],
) -> dict[str, float]:
    """Return what _offline_seconds does, for a business-hours clock on SQLite.

    SQLite shares no subexpressions, so the clock's arithmetic reads each period's clipped
    ends, and their shifted times and days, from two subqueries that a LIMIT keeps unflattened
    (co-routines computing them once a row). They are correlated per device, so no GROUP BY
    sorts their rows; a CASE on the device's door picks the subquery subtracting that door's
    spans, in _offline_seconds' order, so both doors take one statement. The spans lie inside
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


def fleet_figures(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    tz: str,
    business_hours: bool,
    filters: Filters | None = None,
) -> Fleet:
    """Compute every active device's figures over [start, end) (cut at now)."""
    filters = filters or Filters()
    end = max(start, min(end, now))
    sites = list(session.scalars(select(Site).where(*filters.sites()).order_by(Site.id)))
    device_where = [Device.active.is_(True), *filters.sites()]
    if filters.kind:
        device_where.append(Device.kind == filters.kind)
    devices = session.execute(
        select(
            Device.id,
            Device.site_id,
            Device.kind,
            Device.created_at,
            Device.conn_state,
            Device.conn_since,
            Device.deadline,
            Device.gb_id,
            Device.sip_parent,
        )
        .join(Site, Site.id == Device.site_id)
        .where(*device_where)
        .order_by(Device.id)
    ).all()
    door_of_row = {row.id: door_of(row.gb_id, row.sip_parent) for row in devices}
    unknown_by_door = {d: unknown_periods(session, start, end, now, door=d) for d in DOORS}
    unknown_s = {
        d: [(a.timestamp(), b.timestamp()) for a, b in periods]
        for d, periods in unknown_by_door.items()
    }
    # Only the doors of the report's devices cut their offline periods.
    present = set(door_of_row.values())
    cutting = {d: unknown_s[d] if d in present else [] for d in DOORS}
    window = (start.timestamp(), end.timestamp())
    hours_of = {s.id: (s.opens, s.closes) if business_hours else None for s in sites}
    clocks: dict[tuple[str, str] | None, Clock] = {}
    for key in set(hours_of.values()):
        clocks[key] = Clock.of(Hours.parse(*key) if key else None, tz, start)
    offline_s: dict[str, float] = {}
    # One pass per set of hours, each over its own sites' devices only: the clock's arithmetic
    # per period is most of the cost, so none is spent on a period another pass counts again.
    # One set of hours (or none) is a plain scan. A site's (few) devices are named: without
    # statistics PostgreSQL joined the subquery to a scan of the whole fleet's periods.
    ids = [row.id for row in devices] if filters.site else None
    sqlite = session.get_bind().dialect.name == "sqlite"
    for key, clock in clocks.items():
        hours = [Site.opens == key[0], Site.closes == key[1]] if key and len(clocks) > 1 else []
        if clock.hours is not None and sqlite:
            found = _offline_seconds_sqlite(
                session, clock, window, now.timestamp(), cutting, [*device_where, *hours]
            )
        else:
            where = [*filters.sites(), *([Device.kind == filters.kind] if filters.kind else [])]
            found = _offline_seconds(
                session, clock, window, now.timestamp(), cutting, door_of_row, [*where, *hours], ids
            )
        offline_s.update(found)
    cache: dict[tuple[float, tuple[str, str] | None, str], tuple[float, float]] = {}
    out = []
    for row in devices:
        key, door = hours_of[row.site_id], door_of_row[row.id]
        begins = max(window[0], row.created_at.timestamp())
        known = cache.get((begins, key, door))
        if known is None:
            clock, span = clocks[key], (begins, window[1])
            known = (clock.measure(*span), unknown_seconds(span, unknown_s[door], clock))
            cache[(begins, key, door)] = known
        total, unknown_in = known
        offline = offline_s.get(row.id, 0.0)
        figures = Figures(max(total - unknown_in - offline, 0.0), offline, unknown_in)
        now_online = online_now(row.conn_state, row.deadline, now)
        out.append(
            DeviceFigures(row.id, row.site_id, row.kind, now_online, row.conn_since, figures)
        )
    everyone = unknown_periods(session, start, end, now)
    return Fleet(start, end, sites, out, everyone, unknown_by_door)
