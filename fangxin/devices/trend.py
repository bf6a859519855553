"""Daily uptime of a fleet for the dashboard's trend: one grouped pass over the offline periods.

A period is keyed by the day it starts and the day it ends (both inside the window), and each
key's periods are summed once: count, sum of starts, sum of ends. That is enough to split
them over the days exactly, so the database reads each period once instead of once per day.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from fangxin.devices.models import ConnectivityEvent, Device, Site

Day = tuple[int, dt.datetime, dt.datetime]  # index, start, end (fangxin.days.last_days)


def _floor(x: Any, dialect: str) -> Any:
    # SQLite: CAST truncates, which is floor for the non-negative offsets used here.
    return func.floor(x) if dialect == "postgresql" else cast(x, Integer)


def _offline_by_day(
    session: Session, days: Sequence[Day], now_s: float, scope: list[Any]
) -> list[float]:
    """Sum the offline seconds of active devices in scope per day (cut at now)."""
    w0, w1 = days[0][1].timestamp(), min(days[-1][2].timestamp(), now_s)
    n = len(days)
    length = (days[-1][2].timestamp() - w0) / n  # last_days steps in whole UTC days
    dialect = session.get_bind().dialect.name
    lo, hi = (func.greatest, func.least) if dialect == "postgresql" else (func.max, func.min)
    E = ConnectivityEvent
    start = lo(E.at_s, literal(w0))
    end = hi(func.coalesce(E.until_s, now_s), literal(w1))
    first = _floor((start - w0) / length, dialect)
    # the day of the period's last instant: an end on midnight belongs to the day before
    last = _floor((end - w0) / length - literal(1e-9), dialect)
    if scope:
        devices = select(Device.id).join(Site, Site.id == Device.site_id)
        counted = E.device_id.in_(devices.where(Device.active.is_(True), *scope))
    else:
        # The whole city: leaving out the few retired devices is cheaper than looking up every
        # active one (PostgreSQL joined 150,000 periods with 50,000 devices for it).
        counted = E.device_id.not_in(select(Device.id).where(Device.active.is_not(True)))
    # One key for the pair (last + 1 >= 0): SQLite groups by sorting, and sorting 150,000
    # periods on one number instead of two cost 20 % less.
    width = n + 2
    key = first * width + last + 1
    rows = session.execute(
        select(key, func.count(), func.sum(start), func.sum(end))
        .where(
            E.state == "offline",
            E.at_s < w1,
            or_(E.until_s.is_(None), E.until_s > w0),
            counted,
        )
        .group_by(key)
    ).all()
    offline = [0.0] * n
    for pair, count, starts, ends in rows:
        i, j = divmod(int(pair), width)
        i, j = max(i, 0), min(j - 1, n - 1)
        if j < i:  # an empty period (ends where it starts)
            continue
        if i == j:
            offline[i] += float(ends) - float(starts)
            continue
        offline[i] += count * days[i][2].timestamp() - float(starts)
        offline[j] += float(ends) - count * days[j][1].timestamp()
        for k in range(i + 1, j):
            offline[k] += count * (days[k][2] - days[k][1]).total_seconds()
    return offline


def _devices_by_day(session: Session, days: Sequence[Day], scope: list[Any]) -> list[int]:
    """Count active devices in scope registered before each day's end."""
    w0 = days[0][1]
    base = select(func.count()).select_from(Device).where(Device.active.is_(True))
    later = select(Device.created_at).where(Device.active.is_(True))
    if scope:
        base = base.join(Site, Site.id == Device.site_id).where(*scope)
        later = later.join(Site, Site.id == Device.site_id).where(*scope)
    before = session.scalar(base.where(Device.created_at < w0)) or 0
    ends = [b for _, _, b in days]
    counts = [before] * len(days)
    for (created,) in session.execute(later.where(Device.created_at >= w0)):
        for k in range(bisect.bisect_right(ends, created), len(days)):
            counts[k] += 1
    return counts


def daily_uptime(
    session: Session, days: Sequence[Day], now: dt.datetime, scope: list[Any]
) -> list[float | None]:
    """Online share of device-seconds per day, to 4 places (unknown time not excluded)."""
    if not days:
        return []
    offline = _offline_by_day(session, days, now.timestamp(), scope)
    counts = _devices_by_day(session, days, scope)
    out: list[float | None] = []
    for k, (_, a, b) in enumerate(days):
        span = (min(b, now) - a).total_seconds()
        total = counts[k] * span
        if span <= 0 or total <= 0:
            out.append(None)
        else:
            out.append(round(max(total - offline[k], 0.0) / total, 4))
    return out
