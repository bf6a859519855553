"""Connectivity: receive times and declared states become transition events; the timeout sweep.

A device is online from a message until its missed-beats count of intervals (default three)
pass in silence; the outage then starts at the last message plus one interval (the first missed
beat), or at once when the device declares itself offline (LWT or retained `state`). The next
message ends it. The sweep is in `fangxin.devices.sweep`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Table, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from fangxin.db import utcnow
from fangxin.db.bulk import update_rows
from fangxin.devices.alarms import clear_offline_alarms
from fangxin.devices.models import (
    DEFAULT_CAMERA_MAX_INTERVAL_S,
    DEFAULT_MISSED_BEATS,
    ConnectivityEvent,
    Device,
)

_LOGGER = logging.getLogger(__name__)
MISSED_BEATS = DEFAULT_MISSED_BEATS  # GB/T 28181 default; each device has its own count
ONLINE, OFFLINE = "online", "offline"
_devices = cast(Table, Device.__table__)
_events = cast(Table, ConnectivityEvent.__table__)
# Longest applied announced interval per device kind (kinds not listed: the payload's bound).
INTERVAL_CAPS = {"camera": DEFAULT_CAMERA_MAX_INTERVAL_S, "nvr": DEFAULT_CAMERA_MAX_INTERVAL_S}
LIVE_COLUMNS = (
    Device.id,
    Device.kind,
    Device.site_id,
    Device.interval_s,
    Device.reported_interval_s,
    Device.announced_interval_s,
    Device.missed_beats,
    Device.last_seen_at,
    Device.state,
    Device.state_at,
    Device.conn_state,
    Device.conn_since,
    Device.deadline,
)


class Liveness(Protocol):
    """What is_online reads of a device: a Device, or a row of just these columns."""

    @property
    def interval_s(self) -> int: ...
    @property
    def reported_interval_s(self) -> int | None: ...
    @property
    def missed_beats(self) -> int: ...
    @property
    def last_seen_at(self) -> dt.datetime | None: ...
    @property
    def state(self) -> str | None: ...
    @property
    def state_at(self) -> dt.datetime | None: ...
    @property
    def conn_state(self) -> str | None: ...
    @property
    def deadline(self) -> dt.datetime | None: ...


@dataclass(frozen=True, slots=True)
class Transition:
    """A device entering a state at a moment, and why."""

    device_id: str
    state: str
    at: dt.datetime
    cause: str


def timeout(interval_s: int, missed_beats: int = MISSED_BEATS) -> dt.timedelta:
    """Return the silence after which a device with this interval and count is offline."""
    return dt.timedelta(seconds=missed_beats * interval_s)


def effective_interval(device: Liveness) -> int:
    """Return the heartbeat interval in force: the latest status payload's, else the registry's."""
    return device.reported_interval_s or device.interval_s


def online_now(conn_state: str | None, deadline: dt.datetime | None, now: dt.datetime) -> bool:
    """Tell whether the events say online now (a passed deadline the sweep missed is offline)."""
    return conn_state == ONLINE and (deadline is None or deadline > now)


def offline_now_clause(now: dt.datetime) -> ColumnElement[bool]:
    """Return `not online_now(...)` over Device rows in SQL (IS NULL spelt out for no events)."""
    return or_(Device.conn_state != ONLINE, Device.conn_state.is_(None), Device.deadline <= now)


def is_online(device: Liveness, now: dt.datetime) -> bool:
    """Tell whether a device is online now: its connectivity events say so, within its timeout."""
    if device.conn_state is not None:
        return online_now(device.conn_state, device.deadline, now)
    if device.state == OFFLINE and (
        device.last_seen_at is None or (device.state_at and device.state_at >= device.last_seen_at)
    ):
        return False
    if device.last_seen_at is None:
        return False
    return now - device.last_seen_at < timeout(effective_interval(device), device.missed_beats)


@dataclass(slots=True)
class Live:
    """A device's liveness fields while a batch or a sweep works on them."""

    id: str
    interval_s: int
    reported_interval_s: int | None
    announced_interval_s: int | None
    missed_beats: int
    last_seen_at: dt.datetime | None
    state: str | None
    state_at: dt.datetime | None
    conn_state: str | None
    conn_since: dt.datetime | None
    deadline: dt.datetime | None
    out: list[Transition] = field(default_factory=list)

    @classmethod
    def of(cls, row: Any) -> Live:
        values = row._mapping
        return cls(**{k: values[k] for k in cls.__slots__ if k != "out"})

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.reported_interval_s or self.interval_s)

    def outage_start(self) -> dt.datetime:
        since = self.conn_since or self.last_seen_at or utcnow()
        if self.last_seen_at is None:
            return since
        return max(since, self.last_seen_at + self.interval)

    def go(self, state: str, at: dt.datetime, cause: str) -> None:
        if self.conn_since is not None:
            at = max(at, self.conn_since)  # events of a device never go back in time
        self.out.append(Transition(self.id, state, at, cause))
        self.conn_state, self.conn_since = state, at
        # Offline: the deadline is the outage's start until the offline alarm is raised.
        self.deadline = at if state == OFFLINE else self.deadline

    def alive(self, at: dt.datetime) -> None:
        if self.last_seen_at is not None and at <= self.last_seen_at:
            return  # an older batch processed late (ingesters sharing a subscription)
        # At the deadline itself the device is already offline (online_now, the sweep): a message
        # then ends an outage, whether or not the sweep got there first.
        if self.conn_state == ONLINE and self.deadline is not None and at >= self.deadline:
            self.go(OFFLINE, self.outage_start(), "timeout")  # the sweep had not got to it yet
        if self.conn_state != ONLINE:
            self.go(ONLINE, at, "message")
        self.last_seen_at = at
        self.deadline = at + self.missed_beats * self.interval

    def declared(self, state: str, at: dt.datetime) -> None:
        if self.state_at is None or self.state_at <= at:
            self.state, self.state_at = state, at
        # `online` proves nothing when retained; a live one is also a message, handled by alive().
        if state != OFFLINE or self.conn_state != ONLINE:
            return
        if self.last_seen_at is not None and at < self.last_seen_at:
            return  # a will of an older connection, overtaken by newer messages
        if self.deadline is not None and at >= self.deadline:
            self.go(OFFLINE, self.outage_start(), "timeout")
        else:
            self.go(OFFLINE, at, "lwt")

    def values(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "last_seen_at": self.last_seen_at,
            "state": self.state,
            "state_at": self.state_at,
            "reported_interval_s": self.reported_interval_s,
            "announced_interval_s": self.announced_interval_s,
            "conn_state": self.conn_state,
            "conn_since": self.conn_since,
            "deadline": self.deadline,
        }


def apply_activity(
    session: Session,
    seen: Mapping[str, dt.datetime],
    states: Mapping[str, tuple[str, dt.datetime]],
    intervals: Mapping[str, int],
    caps: Mapping[str, int] | None = None,
) -> list[Transition]:
    """Apply a batch's receive times, declared states and intervals; store the transitions.

    An announced interval is recorded as said and applied capped by its kind's entry in caps.
    """
    caps = INTERVAL_CAPS if caps is None else caps
    ids = sorted(set(seen) | set(states) | set(intervals))
    if not ids:
        return []
    # FOR NO KEY UPDATE, not FOR UPDATE: the batch's inserts (results, alarms, events) already
    # hold KEY SHARE locks on these rows through their foreign keys, and FOR UPDATE conflicts
    # with KEY SHARE. Two ingesters of one shared subscription then deadlocked on every pair of
    # batches for the same devices; NO KEY UPDATE still serialises the liveness updates.
    rows = session.execute(
        select(*LIVE_COLUMNS)
        .where(Device.id.in_(ids))
        .order_by(Device.id)
        .with_for_update(key_share=True)
    ).all()
    saved, transitions = [], []
    for row in rows:
        live = Live.of(row)
        if row.id in intervals:
            announced = intervals[row.id]
            live.announced_interval_s = announced
            live.reported_interval_s = min(announced, caps.get(row.kind, announced))
        # Declared states sort before messages of the same instant: a message wins the tie.
        steps: list[tuple[dt.datetime, int, str]] = []
        if row.id in states:
            state, at = states[row.id]
            steps.append((at, 0, state))
        if row.id in seen:
            steps.append((seen[row.id], 1, ONLINE))
        for at, kind, state in sorted(steps):
            if kind == 0:
                live.declared(state, at)
            else:
                live.alive(at)
        saved.append(live.values())
        transitions.extend(live.out)
    # One statement for the batch's devices on PostgreSQL (COPY and UPDATE … FROM), not one each.
    update_rows(session, _devices, saved, ("id",))
    record_transitions(session, transitions)
    clear_offline_alarms(session, [(t.device_id, t.at) for t in transitions if t.state == ONLINE])
    return transitions


def record_transitions(session: Session, transitions: Sequence[Transition]) -> None:
    """Close each device's current event at its first transition and append the new events."""
    by_device: dict[str, list[Transition]] = {}
    for item in transitions:
        by_device.setdefault(item.device_id, []).append(item)
    closes: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for device_id, items in by_device.items():
        items.sort(key=lambda t: t.at)
        closes.append({"did": device_id, "u": items[0].at, "us": items[0].at.timestamp()})
        for item, nxt in zip(items, [*items[1:], None], strict=True):
            until = nxt.at if nxt else None
            rows.append(
                {
                    "device_id": device_id,
                    "state": item.state,
                    "at": item.at,
                    "at_s": item.at.timestamp(),
                    "until": until,
                    "until_s": until.timestamp() if until else None,
                    "cause": item.cause,
                    "recorded_at": now,
                }
            )
    if closes:
        session.execute(
            update(_events)
            .where(_events.c.device_id == bindparam("did"), _events.c.until_s.is_(None))
            .values(until=bindparam("u"), until_s=bindparam("us")),
            closes,
        )
        session.execute(insert(_events), rows)


def start_offline(session: Session, device_id: str, at: dt.datetime, cause: str) -> None:
    """Put a device offline from `at` (registration, deactivation).

    No offline alarm follows: a device never heard from is not installed yet, not an incident
    (it still counts as offline in the figures and the offline-now list).
    """
    record_transitions(session, [Transition(device_id, OFFLINE, at, cause)])
    session.execute(
        update(_devices)
        .where(_devices.c.id == device_id)
        .values(conn_state=OFFLINE, conn_since=at, deadline=None)
    )
