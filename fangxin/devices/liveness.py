"""Recording device activity (receive times, declared states, announced intervals)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import cast

from sqlalchemy import Table, bindparam, or_, update
from sqlalchemy.orm import Session

from fangxin.devices.models import Device

_table = cast(Table, Device.__table__)
_devices = _table.c


def record_activity(
    session: Session,
    seen: Mapping[str, dt.datetime],
    states: Mapping[str, tuple[str, dt.datetime]],
    intervals: Mapping[str, int],
) -> None:
    """Store the latest receive time, declared state and announced interval per device.

    Times only move forward, so ingesters sharing a subscription cannot rewind each other.
    """
    if seen:
        session.execute(
            update(_table)
            .where(_devices.id == bindparam("did"))
            .where(or_(_devices.last_seen_at.is_(None), _devices.last_seen_at < bindparam("at")))
            .values(last_seen_at=bindparam("at")),
            [{"did": k, "at": v} for k, v in seen.items()],
        )
    if states:
        session.execute(
            update(_table)
            .where(_devices.id == bindparam("did"))
            .where(or_(_devices.state_at.is_(None), _devices.state_at <= bindparam("at")))
            .values(state=bindparam("st"), state_at=bindparam("at")),
            [{"did": k, "st": s, "at": at} for k, (s, at) in states.items()],
        )
    if intervals:
        session.execute(
            update(_table)
            .where(_devices.id == bindparam("did"))
            .values(reported_interval_s=bindparam("iv")),
            [{"did": k, "iv": v} for k, v in intervals.items()],
        )
