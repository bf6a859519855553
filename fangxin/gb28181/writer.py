"""The gateway's database thread: batches of liveness, registrations, channels, alarms, events.

The network loop never waits for the database: it hands facts over here and answers at once.
Receive times are taken by the loop, so a slow batch does not shift anybody's liveness.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import utcnow
from fangxin.devices.connectivity import ONLINE
from fangxin.devices.liveness import record_activity
from fangxin.devices.models import SIP_DOOR
from fangxin.devices.observation import close_run, open_run, touch_run
from fangxin.devices.sipdevices import (
    SipDevice,
    add_alarms,
    add_security_events,
    save_registrations,
    upsert_channels,
)
from fangxin.devices.sweep import restart_grace, sweep

_LOGGER = logging.getLogger(__name__)
CHUNK = 2000  # devices per transaction: bounded locks and statement sizes


@dataclass(slots=True)
class _Batch:
    seen: dict[str, dt.datetime] = field(default_factory=dict)
    states: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)
    regs: dict[str, tuple[str | None, dt.datetime | None]] = field(default_factory=dict)
    channels: list[tuple[SipDevice, list[tuple[str, str | None]]]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    security: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.seen, self.states, self.regs, self.channels, self.alarms, self.security))


class Writer(threading.Thread):
    """Writes what the gateway learnt in batches; keeps the gateway's observed run; sweeps."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client_id: str,
        on_channels: Callable[[list[SipDevice]], None],
        *,
        flush_s: float = 0.05,
        tick_s: float = 1.0,
        alarm_after: dt.timedelta = dt.timedelta(minutes=30),
    ) -> None:
        """Prepare; `on_channels` learns of channels the writer registered."""
        super().__init__(name="fangxin-sip-writer", daemon=True)
        self.sessions = sessions
        self.client_id = client_id
        self.on_channels = on_channels
        self.flush_s = flush_s
        self.tick_s = tick_s
        self.alarm_after = alarm_after
        self.run_id: int | None = None
        self.written = 0
        self._batch = _Batch()
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._alive_at = 0.0

    def seen(self, device_id: str, at: dt.datetime) -> None:
        """Note a keepalive or registration from a device at `at` (our clock)."""
        with self._lock:
            self._batch.seen[device_id] = at

    def declared(self, device_id: str, state: str, at: dt.datetime) -> None:
        """Note an unregistration, a lapsed registration, or a channel reported ON/OFF."""
        with self._lock:
            self._batch.states[device_id] = (state, at)
            if state == ONLINE:
                self._batch.seen[device_id] = at

    def registration(
        self, device_id: str, contact: str | None, expires: dt.datetime | None
    ) -> None:
        """Note a registration made, renewed or ended."""
        with self._lock:
            self._batch.regs[device_id] = (contact, expires)

    def channels(self, parent: SipDevice, items: list[tuple[str, str | None]]) -> None:
        """Note channels an NVR listed that may be new."""
        with self._lock:
            self._batch.channels.append((parent, items))

    def alarm(self, row: dict[str, Any]) -> None:
        """Note an alarm a device raised."""
        with self._lock:
            self._batch.alarms.append(row)

    def security(self, row: dict[str, Any]) -> None:
        """Note a refused request worth a security event."""
        with self._lock:
            self._batch.security.append(row)

    def open(self) -> None:
        """Open the observed run (before the doors open): the time we were down is unknown."""
        now = utcnow()
        with self.sessions.begin() as session:
            self.run_id, gap = open_run(session, self.client_id, now, door=SIP_DOOR)
            if gap:
                restart_grace(session, now, SIP_DOOR)
        self._alive_at = time.monotonic()

    def run(self) -> None:
        """Flush every flush_s and keep the run and the sweep every tick_s, until stopped."""
        next_tick = time.monotonic() + self.tick_s
        while not self._stop_event.wait(self.flush_s):
            self.flush()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_s
                self._tick()

    def flush(self) -> None:
        """Write what is pending in one transaction per chunk; a failed batch is retried."""
        with self._lock:
            batch, self._batch = self._batch, _Batch()
        if not batch:
            return
        try:
            self._write(batch)
        except SQLAlchemyError as exc:
            _LOGGER.error("SIP gateway write failed (retrying): %s", exc)
            with self._lock:
                self._requeue(batch)

    def _write(self, batch: _Batch) -> None:
        made: list[SipDevice] = []
        with self.sessions.begin() as session:
            now = utcnow()
            for parent, items in batch.channels:
                made += upsert_channels(session, parent, items, now)
            save_registrations(session, [(d, c, x) for d, (c, x) in batch.regs.items()])
            add_alarms(session, batch.alarms)
            add_security_events(session, batch.security)
            ids = sorted(set(batch.seen) | set(batch.states))
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                seen = {d: batch.seen[d] for d in chunk if d in batch.seen}
                states = {d: batch.states[d] for d in chunk if d in batch.states}
                record_activity(session, seen, states, {})
        self.written += len(batch.seen)
        if made:
            self.on_channels(made)

    def _requeue(self, batch: _Batch) -> None:
        pending = self._batch
        for device, at in batch.seen.items():
            pending.seen.setdefault(device, at)
        for device, state in batch.states.items():
            pending.states.setdefault(device, state)
        for device, reg in batch.regs.items():
            pending.regs.setdefault(device, reg)
        pending.channels[:0] = batch.channels
        pending.alarms[:0] = batch.alarms
        pending.security[:0] = batch.security

    def _tick(self) -> None:
        try:
            with self.sessions.begin() as session:
                now = utcnow()
                if self.run_id is not None and time.monotonic() - self._alive_at >= 10:
                    touch_run(session, self.run_id, now)
                    self._alive_at = time.monotonic()
                sweep(session, now, self.alarm_after, door=SIP_DOOR)
        except SQLAlchemyError as exc:
            _LOGGER.error("SIP gateway tick failed (retrying): %s", exc)

    def stop(self) -> None:
        """Flush what is pending and close the observed run."""
        self._stop_event.set()
        if self.is_alive():
            self.join(30)
        self.flush()
        if self.run_id is not None:
            with self.sessions.begin() as session:
                close_run(session, self.run_id, utcnow())
            self.run_id = None
