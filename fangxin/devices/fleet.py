"""Uptime figures of many devices at once: offline seconds summed in SQL, the rest in Python."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fangxin.devices.connectivity import online_now
from fangxin.devices.day_store import bounds, settled_days, stored_offline, stored_ready
from fangxin.devices.models import ConnectivityEvent, Device, Site
from fangxin.devices.observation import DOORS, door_of, unknown_periods
from fangxin.devices.offline_passes import offline_by_device
from fangxin.devices.uptime import Clock, Figures, Hours, Span, UnknownTime, clip

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
    ids = [row.id for row in devices] if filters.site else None
    where = [*filters.sites(), *([Device.kind == filters.kind] if filters.kind else [])]

    def counted_now(part: Span) -> dict[str, float]:
        # the spans cut to the part, as unknown_periods over it would
        cut = {d: [c for c in (clip(u, part) for u in spans) if c] for d, spans in cutting.items()}
        return offline_by_device(
            session, clocks, part, now.timestamp(), cut, door_of_row, device_where, where, ids
        )

    # Whole settled days are stored (day_store); only the window's ends are counted now. A
    # site's few devices are counted whole: their periods are found by device, and cheaply.
    days = settled_days(start, end, now, tz) if ids is None else []
    if days and stored_ready(session, tz, days):
        first, after = bounds(days, tz)
        offline_s = stored_offline(session, tz, days, business_hours, where)
        for part in ((window[0], first.timestamp()), (after.timestamp(), window[1])):
            if part[1] > part[0]:
                for device, seconds in counted_now(part).items():
                    offline_s[device] = offline_s.get(device, 0.0) + seconds
    else:
        offline_s = counted_now(window)
    # Devices registered within the window each begin at their own time: each is one lookup.
    unknown_of = {
        (key, door): UnknownTime(unknown_s[door], clocks[key]) for key in clocks for door in DOORS
    }
    out = []
    for row in devices:
        key, door = hours_of[row.site_id], door_of_row[row.id]
        span = (max(window[0], row.created_at.timestamp()), window[1])
        total, unknown_in = clocks[key].measure(*span), unknown_of[key, door].within(span)
        offline = offline_s.get(row.id, 0.0)
        figures = Figures(max(total - unknown_in - offline, 0.0), offline, unknown_in)
        now_online = online_now(row.conn_state, row.deadline, now)
        out.append(
            DeviceFigures(row.id, row.site_id, row.kind, now_online, row.conn_since, figures)
        )
    everyone = unknown_periods(session, start, end, now)
    return Fleet(start, end, sites, out, everyone, unknown_by_door)
