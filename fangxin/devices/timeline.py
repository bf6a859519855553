"""Devices' uptime over a window with their offline periods, for the device and kitchen pages."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fangxin.devices.connectivity import online_now
from fangxin.devices.models import ConnectivityEvent, Device, Site
from fangxin.devices.observation import door_of, unknown_periods
from fangxin.devices.uptime import Clock, Hours, window_figures

E = ConnectivityEvent


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


def _minus(
    span: tuple[float, float], holes: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Return the parts of an epoch span outside sorted, disjoint holes."""
    out, cursor = [], span[0]
    for h0, h1 in holes:
        if h1 <= cursor or h0 >= span[1]:
            continue
        if h0 > cursor:
            out.append((cursor, h0))
        cursor = max(cursor, h1)
    if cursor < span[1]:
        out.append((cursor, span[1]))
    return out


def device_uptime(
    session: Session,
    device: Device,
    site: Site,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    tz: str,
    business_hours: bool,
) -> dict[str, Any]:
    """Return one device's figures over [start, end) and its offline periods in the window."""
    return devices_uptime(
        session, [device], site, start, end, now, tz=tz, business_hours=business_hours
    )[0]


def devices_uptime(
    session: Session,
    devices: Sequence[Device],
    site: Site,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    tz: str,
    business_hours: bool,
) -> list[dict[str, Any]]:
    """Return device_uptime of each of a site's devices: one read of their periods, one per door."""
    end = max(start, min(end, now))
    w0, w1 = start.timestamp(), end.timestamp()
    rows: dict[str, list[tuple[float, float | None, str | None]]] = defaultdict(list)
    if devices:
        for device_id, a, u, cause in session.execute(
            select(E.device_id, E.at_s, E.until_s, E.cause)
            .where(
                E.device_id.in_([d.id for d in devices]),
                E.state == "offline",
                E.at_s < w1,
                or_(E.until_s.is_(None), E.until_s > w0),
            )
            .order_by(E.device_id, E.at_s)
        ):
            rows[device_id].append((a, u, cause))
    hours = Hours.parse(site.opens, site.closes) if business_hours else None
    clock = Clock.of(hours, tz, start)
    unknown_of: dict[str, list[tuple[float, float]]] = {}
    out = []
    for device in devices:
        door = door_of(device.gb_id, device.sip_parent)  # its own door's downtime is unknown
        if door not in unknown_of:
            unknown_of[door] = [
                (a.timestamp(), b.timestamp())
                for a, b in unknown_periods(session, start, end, now, door=door)
            ]
        report = _report(device, rows[device.id], unknown_of[door], (w0, w1), now, clock)
        out.append(
            {
                "device": device.id,
                "site": site.id,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "business_hours": f"{site.opens}-{site.closes}" if business_hours else None,
                "door": door,
                **report,
            }
        )
    return out


def _report(
    device: Device,
    rows: list[tuple[float, float | None, str | None]],
    unknown: list[tuple[float, float]],
    window: tuple[float, float],
    now: dt.datetime,
    clock: Clock,
) -> dict[str, Any]:
    """Return a device's figures, state now and periods from its offline rows in the window."""
    w0, w1 = window
    span = (max(w0, device.created_at.timestamp()), w1)
    offline = [(a, u if u is not None else now.timestamp()) for a, u, _ in rows]
    figures = window_figures(span, offline, unknown, clock)
    periods = []
    for a, u, cause in rows:
        stop = u if u is not None else now.timestamp()
        # The table classifies time as the figures do: an ingester outage is unknown, not offline.
        for p0, p1 in _minus((a, stop), unknown):
            periods.append(
                {
                    "from": _iso(p0),
                    "to": None if u is None and p1 >= stop else _iso(p1),
                    "cause": cause,
                    "seconds": round(clock.measure(max(p0, w0), min(p1, w1)), 3),
                }
            )
    return {
        **figures.as_dict(),
        "online_now": online_now(device.conn_state, device.deadline, now),
        "offline_periods": periods,
        "unknown_periods": [{"from": _iso(a), "to": _iso(b)} for a, b in unknown],
    }
