"""What the pipeline passes around: raw messages, per-batch rows, outcomes and lookups."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fangxin.devices.models import Device
from fangxin.ingest.models import DeadLetter
from fangxin.ingest.sinks import Point
from fangxin.trace.results.catalogue import Catalogue
from fangxin.trace.results.intake import Pending

_LOGGER = logging.getLogger(__name__)
MAX_STORED_PAYLOAD = 2048


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message as it came off the wire, stamped with our receive time."""

    topic: str
    payload: bytes
    received_at: dt.datetime
    retained: bool = False


@dataclass(slots=True)
class BatchStats:
    """What one batch did."""

    messages: int = 0
    results: int = 0
    statuses: int = 0
    alarms: int = 0
    states: int = 0
    dead_letters: int = 0
    security_events: int = 0

    def add(self, other: BatchStats) -> None:
        """Add another batch's counts to these."""
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    site_id: str
    kind: str


class LookupCache:
    """Registry and catalogue lookups cached for a few seconds: every message needs them."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.devices: dict[str, tuple[float, DeviceInfo | None]] = {}
        self.items = Catalogue({})
        self.items_at = -1e9

    def device_infos(self, session: Session, ids: Iterable[str]) -> dict[str, DeviceInfo | None]:
        now = time.monotonic()
        missing = {i for i in ids if i not in self.devices or now - self.devices[i][0] > self.ttl_s}
        if missing:
            rows = session.execute(
                select(Device.id, Device.site_id, Device.kind).where(
                    Device.id.in_(missing), Device.active.is_(True)
                )
            )
            found = {r.id: DeviceInfo(r.site_id, r.kind) for r in rows}
            for device_id in missing:
                self.devices[device_id] = (now, found.get(device_id))
        return {i: self.devices[i][1] for i in ids}

    def catalogue(self, session: Session) -> Catalogue:
        if time.monotonic() - self.items_at > self.ttl_s:
            self.items = Catalogue.load(session)
            self.items_at = time.monotonic()
        return self.items


def storable(text: str) -> str:
    """Return text a PostgreSQL text column accepts (NUL shown as U+FFFD)."""
    return text.replace("\x00", "\ufffd")


def truncate_payload(payload: bytes) -> str:
    """Return the payload as text, cut to what a dead-letter row keeps."""
    return storable(payload[:MAX_STORED_PAYLOAD].decode("utf-8", errors="replace"))


@dataclass(slots=True)
class Outcome:
    """What became of one result posted over HTTP: stored, duplicate or rejected, and why."""

    index: int
    id: str | None = None
    device: str | None = None
    status: str = "rejected"
    verdict: str | None = None
    error: str | None = None
    # invalid, forbidden, unknown_device, site_mismatch or channel_not_allowed when rejected
    kind: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as the HTTP answer shows it (empty fields left out)."""
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(slots=True)
class Batch:
    """Rows and points gathered from a batch before the writes."""

    results: list[Pending] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    security: list[dict[str, Any]] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    seen: dict[str, dt.datetime] = field(default_factory=dict)
    states: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)
    intervals: dict[str, int] = field(default_factory=dict)
    # (site, device, free GB, ts) of status messages that report storage
    storage: list[tuple[str, str, float, dt.datetime]] = field(default_factory=list)


def result_point(row: dict[str, Any]) -> Point:
    fields: dict[str, float | str] = {"id": row["result_id"]}
    if row["value"] is not None:
        fields["value"] = float(row["value"])
    tags = {
        "site": row["site_id"],
        "device": row["device_id"],
        "item": row["item_code"],
        "verdict": row["verdict"],
    }
    return Point("rapid_test", tags, fields, row["ts"], key=row["result_id"])


def dead_letter(session: Session, msg: RawMessage, reason: str, source: str = "mqtt") -> None:
    """Record one message as refused (used when storing it failed in a way parsing missed)."""
    session.add(
        DeadLetter(
            received_at=msg.received_at,
            source=source,
            topic=storable(msg.topic[:300]),
            payload=truncate_payload(msg.payload),
            reason=storable(reason),
        )
    )


def add_dead(batch: Batch, msg: RawMessage, reason: str, source: str) -> None:
    """Add a dead letter (the message and why it was refused) to the batch."""
    _LOGGER.info("Dead letter on %s: %s", msg.topic, reason)
    batch.dead.append(
        {
            "received_at": msg.received_at,
            "source": source,
            "topic": storable(msg.topic[:300]),
            "payload": truncate_payload(msg.payload),
            "reason": storable(reason),
        }
    )


def add_security(
    batch: Batch,
    at: dt.datetime,
    where: str,
    device_id: str,
    site_id: str,
    info: DeviceInfo | None,
) -> tuple[str, str]:
    """Add the security event of an unknown device or a site mismatch; return kind, detail."""
    if info is None:
        kind, detail = "unknown_device", f"device {device_id} is not registered or inactive"
    else:
        kind = "site_mismatch"
        detail = f"device {device_id} belongs to site {info.site_id}, not {site_id}"
    add_security_row(batch, at, kind, where, device_id, site_id, detail)
    return kind, detail


def add_security_row(
    batch: Batch,
    at: dt.datetime,
    kind: str,
    where: str,
    device_id: str,
    site_id: str,
    detail: str,
) -> None:
    """Add a security event (an attempt refused and not stored) to the batch."""
    _LOGGER.warning("Security event %s on %s: %s", kind, where, detail)
    batch.security.append(
        {
            "at": at,
            "kind": kind,
            "topic": storable(where[:300]),
            "device_id": device_id,
            "site_id": site_id,
            "detail": storable(detail),
        }
    )
