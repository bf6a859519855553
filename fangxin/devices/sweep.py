"""The timeout sweep and the restart grace, of every door's devices or of one door's."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from fangxin.devices.alarms import raise_offline_alarms
from fangxin.devices.connectivity import (
    LIVE_COLUMNS,
    OFFLINE,
    ONLINE,
    Live,
    Transition,
    record_transitions,
    timeout,
)
from fangxin.devices.models import Device
from fangxin.devices.observation import door_clause

_LOGGER = logging.getLogger(__name__)
_devices = cast(Table, Device.__table__)


def _of(door: str | None) -> list[Any]:
    return [] if door is None else [door_clause(door)]


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep tick changed."""

    timed_out: int
    alarms: int


def sweep(
    session: Session,
    now: dt.datetime,
    alarm_after: dt.timedelta,
    limit: int = 1000,
    door: str | None = None,
) -> SweepResult:
    """Time out silent devices of a door (None: all) and raise offline alarms; costs what is due.

    A door sweeps only its own devices: while the gateway is down, the MQTT ingester must not
    time GB/T 28181 devices out (that time is unknown, not offline), and the other way round.
    """
    due = session.execute(
        select(*LIVE_COLUMNS)
        .where(
            Device.conn_state == ONLINE,
            Device.deadline <= now,
            Device.active.is_(True),
            *_of(door),
        )
        .order_by(Device.deadline)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    transitions = []
    for row in due:
        live = Live.of(row)
        start = live.outage_start()
        # Guarded: on SQLite the read above holds no lock, so a message may have come meanwhile.
        done = session.execute(
            update(_devices)
            .where(
                _devices.c.id == row.id,
                _devices.c.conn_state == ONLINE,
                _devices.c.deadline <= now,
            )
            .values(conn_state=OFFLINE, conn_since=start, deadline=start)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            transitions.append(Transition(row.id, OFFLINE, start, "timeout"))
    record_transitions(session, transitions)
    overdue = session.execute(
        select(Device.id, Device.site_id, Device.conn_since)
        .where(
            Device.conn_state == OFFLINE,
            Device.deadline <= now - alarm_after,
            Device.active.is_(True),
            *_of(door),
        )
        .order_by(Device.deadline)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    raised = raise_offline_alarms(
        session, [(r.id, r.site_id, r.conn_since or now) for r in overdue], now, alarm_after
    )
    if overdue:
        session.execute(
            update(_devices)
            .where(_devices.c.id.in_([r.id for r in overdue]), _devices.c.conn_state == OFFLINE)
            .values(deadline=None)
        )
    if transitions or raised:
        _LOGGER.info("Sweep: %d timed out, %d offline alarms", len(transitions), raised)
    return SweepResult(len(transitions), raised)


def restart_grace(session: Session, now: dt.datetime, door: str | None = None) -> int:
    """Give a door's online devices one timeout from our restart before any may time out."""
    rows = session.execute(
        select(
            Device.id,
            Device.interval_s,
            Device.reported_interval_s,
            Device.missed_beats,
            Device.deadline,
        ).where(Device.conn_state == ONLINE, *_of(door))
    ).all()
    moved = []
    for row in rows:
        grace = now + timeout(row.reported_interval_s or row.interval_s, row.missed_beats)
        if row.deadline is None or row.deadline < grace:
            moved.append({"did": row.id, "dl": grace})
    if moved:
        session.execute(
            update(_devices)
            .where(_devices.c.id == bindparam("did"))
            .values(deadline=bindparam("dl")),
            moved,
        )
        _LOGGER.info(
            "Restart grace: %d online devices get one timeout before any offline", len(moved)
        )
    return len(moved)
