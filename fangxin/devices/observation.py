"""Observed time: when an ingester was connected and storing. Outside it, liveness is unknown."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fangxin.devices.models import IngesterRun

# A run not heard from for this long is taken to have ended at its last sign of life.
STALE_AFTER = dt.timedelta(seconds=30)
Period = tuple[dt.datetime, dt.datetime]


def open_run(
    session: Session, client_id: str, now: dt.datetime, stale_after: dt.timedelta = STALE_AFTER
) -> tuple[int, bool]:
    """Start an observed stretch; return its id and whether nobody was observing just before."""
    # Our own run still open means we died without closing it: end it at its last sign of life.
    crashed = session.execute(
        update(IngesterRun)
        .where(IngesterRun.client_id == client_id, IngesterRun.ended_at.is_(None))
        .values(ended_at=IngesterRun.last_alive_at)
    ).rowcount  # type: ignore[attr-defined]
    latest = session.scalar(
        select(func.max(func.coalesce(IngesterRun.ended_at, IngesterRun.last_alive_at)))
    )
    gap = bool(crashed) or latest is None or now - latest > stale_after
    run = IngesterRun(client_id=client_id, started_at=now, last_alive_at=now)
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
) -> list[Period]:
    """Return the merged stretches of [start, end) during which some ingester was observing."""
    rows = session.execute(
        select(IngesterRun.started_at, IngesterRun.last_alive_at, IngesterRun.ended_at)
        .where(
            IngesterRun.started_at < end,
            (IngesterRun.ended_at.is_(None)) | (IngesterRun.ended_at > start),
        )
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
) -> list[Period]:
    """Return the stretches of [start, min(end, now)) when no ingester was observing."""
    end = min(end, now)
    if end <= start:
        return []
    return complement(observed_periods(session, start, end, now, stale_after), start, end)
