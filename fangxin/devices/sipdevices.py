"""GB/T 28181 devices in the registry: registrations, NVR channels, alarms, security events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from fangxin.db.bulk import insert_ignore
from fangxin.devices.connectivity import OFFLINE, apply_activity
from fangxin.devices.models import (
    DEFAULT_INTERVAL_S,
    DEFAULT_MISSED_BEATS,
    Alarm,
    Device,
    SecurityEvent,
)

_devices = cast(Table, Device.__table__)


@dataclass(slots=True)
class SipDevice:
    """What the SIP door keeps in memory of a GB/T 28181 device (or an NVR's channel)."""

    id: str
    gb_id: str
    site_id: str
    kind: str
    ha1: str | None
    parent: str | None
    contact: str | None
    expires_at: dt.datetime | None
    active: bool


def load(session: Session, gb_id: str | None = None) -> list[SipDevice]:
    """Return every device with a 国标编码 (or the one with this code)."""
    stmt = select(
        Device.id,
        Device.gb_id,
        Device.site_id,
        Device.kind,
        Device.sip_ha1,
        Device.sip_parent,
        Device.sip_contact,
        Device.sip_expires_at,
        Device.active,
    ).where(Device.gb_id.is_not(None))
    if gb_id is not None:
        stmt = stmt.where(Device.gb_id == gb_id)
    return [
        SipDevice(
            r.id,
            r.gb_id or "",
            r.site_id,
            r.kind,
            r.sip_ha1,
            r.sip_parent,
            r.sip_contact,
            r.sip_expires_at,
            r.active,
        )
        for r in session.execute(stmt)
    ]


def save_registrations(
    session: Session, rows: Sequence[tuple[str, str | None, dt.datetime | None]]
) -> None:
    """Store (device id, contact, expiry) of registrations; None ends one."""
    if rows:
        session.execute(
            update(_devices)
            .where(_devices.c.id == bindparam("did"))
            .values(sip_contact=bindparam("c"), sip_expires_at=bindparam("x")),
            [{"did": d, "c": c, "x": x} for d, c, x in rows],
        )


def go_offline(session: Session, device_ids: Sequence[str], at: dt.datetime) -> None:
    """Declare devices offline at once (unregistered, registration expired, channel OFF)."""
    if device_ids:
        apply_activity(session, {}, {d: (OFFLINE, at) for d in device_ids}, {})


def upsert_channels(
    session: Session,
    parent: SipDevice,
    channels: Sequence[tuple[str, str | None]],
    now: dt.datetime,
) -> list[SipDevice]:
    """Register an NVR's channels (gb id, name) as cameras of its site; return the new ones."""
    known = set(
        session.scalars(select(Device.gb_id).where(Device.gb_id.in_([c for c, _ in channels])))
    )
    taken = set(session.scalars(select(Device.id).where(Device.id.in_([c for c, _ in channels]))))
    made = []
    # A channel is timed like its NVR: the platform's interval and missed-beats count.
    timing = session.execute(
        select(Device.interval_s, Device.missed_beats).where(Device.id == parent.id)
    ).first()
    for gb_id, _name in channels:
        if gb_id in known or gb_id in taken:
            continue
        session.add(
            Device(
                id=gb_id,
                site_id=parent.site_id,
                kind="camera",
                gb_id=gb_id,
                sip_parent=parent.id,
                created_at=now,
                interval_s=timing.interval_s if timing else DEFAULT_INTERVAL_S,
                missed_beats=timing.missed_beats if timing else DEFAULT_MISSED_BEATS,
            )
        )
        made.append(
            SipDevice(gb_id, gb_id, parent.site_id, "camera", None, parent.id, None, None, True)
        )
    session.flush()
    return made


def add_alarms(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store alarms of GB/T 28181 devices; a re-sent alarm (same device and id) is stored once."""
    insert_ignore(session, cast(Table, Alarm.__table__), list(rows), ("device_id", "alarm_id"))


def add_security_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store refused SIP requests (unknown id, bad password, spoofing) as security events."""
    if rows:
        session.execute(insert(SecurityEvent), list(rows))
