"""Observed time, per door: when it was connected and storing. Outside it, liveness is unknown."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from fangxin.devices.models import MQTT_DOOR, SIP_DOOR, Device, IngesterRun

DOORS = (MQTT_DOOR, SIP_DOOR)

# A run not heard from for this long is taken to have ended at its last sign of life.
STALE_AFTER = dt.timedelta(seconds=30)
Period = tuple[dt.datetime, dt.datetime]


def door_of(gb_id: str | None, sip_parent: str | None) -> str:
    """Return the door a device talks through: GB/T 28181 devices (and channels) use SIP."""
    return SIP_DOOR if gb_id is not None or sip_parent is not None else MQTT_DOOR


def door_clause(door: str) -> ColumnElement[bool]:
    """Return `door_of(...) == door` over Device rows in SQL."""
    sip = or_(Device.gb_id.is_not(None), Device.sip_parent.is_not(None))
    return sip if door == SIP_DOOR else and_(Device.gb_id.is_(None), Device.sip_parent.is_(None))


def open_run(
    session: Session,
    client_id: str,
    now: dt.datetime,
    stale_after: dt.timedelta = STALE_AFTER,
    door: str = MQTT_DOOR,
) -> tuple[int, bool]:
    """Start a door's observed stretch; return its id and whether the door was unobserved."""
    # Our own run still open means we died without closing it: end it at its last sign of life.
    crashed = session.execute(
        update(IngesterRun)
        .where(IngesterRun.client_id == client_id, IngesterRun.ended_at.is_(None))
        .values(ended_at=IngesterRun.last_alive_at)
    ).rowcount  # type: ignore[attr-defined]
    latest = session.scalar(
        select(func.max(func.coalesce(IngesterRun.ended_at, IngesterRun.last_alive_at))).where(
            IngesterRun.door == door
        )
    )
    gap = bool(crashed) or latest is None or now - latest > stale_after
    run = IngesterRun(client_id=client_id, door=door, started_at=now, last_alive_at=now)
    session.add(run)
    session.flush()
    return run.id, gap


def touch_run(session: Session, run_id: int, now: dt.datetime) -> None:
    """Record that the run is alive and connected now."""
    session.execute(update(IngesterRun).where(IngesterRun.id == run_id).values(last_alive_at=now))


def close_run(session: Session, run_id: int, now: dt.datetime) -> None:
    """End a run (disconnected from the broker, or stopping)."""
    session.execute(
        update(IngesterRun).where(IngesterRun.id == run_id).values(last_alive_at=now, ended_at=now)
    )


def observed_periods(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    stale_after: dt.timedelta = STALE_AFTER,
    door: str | None = None,
) -> list[Period]:
    """Return the merged stretches of [start, end) when the door (None: any) was observing."""
    where: list[Any] = [
        IngesterRun.started_at < end,
        (IngesterRun.ended_at.is_(None)) | (IngesterRun.ended_at > start),
    ]
    if door is not None:
        where.append(IngesterRun.door == door)
    rows = session.execute(
        select(IngesterRun.started_at, IngesterRun.last_alive_at, IngesterRun.ended_at)
        .where(*where)
        .order_by(IngesterRun.started_at)
    ).all()
    merged: list[Period] = []
    for began, alive, ended in rows:
        if ended is None:
            ended = now if now - alive <= stale_after else alive
        s, e = max(began, start), min(ended, end)
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def complement(periods: list[Period], start: dt.datetime, end: dt.datetime) -> list[Period]:
    """Return the parts of [start, end) not covered by sorted, disjoint periods."""
    out: list[Period] = []
    cursor = start
    for s, e in periods:
        if s > cursor:
            out.append((cursor, min(s, end)))
        cursor = max(cursor, e)
    if cursor < end:
        out.append((cursor, end))
    return [(s, e) for s, e in out if e > s]


def unknown_periods(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    stale_after: dt.timedelta = STALE_AFTER,
    door: str | None = None,
) -> list[Period]:
    """Return the stretches of [start, min(end, now)) when the door (None: any) was unobserved."""
    end = min(end, now)
    if end <= start:
        return []
    observed = observed_periods(session, start, end, now, stale_after, door)
    return complement(observed, start, end)
