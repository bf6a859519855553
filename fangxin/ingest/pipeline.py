"""From raw messages to stored records: topic check, parse, verdict, dedupe, durable write."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fangxin.devices.liveness import record_activity
from fangxin.devices.models import Alarm, Device
from fangxin.ingest.models import DeadLetter, SecurityEvent
from fangxin.ingest.payloads import (
    AlarmPayload,
    Limits,
    PayloadError,
    ResultPayload,
    SiteResultPayload,
    StatusPayload,
    parse_elements,
)
from fangxin.ingest.sinks import Point, PointSink
from fangxin.ingest.sql import insert_ignore
from fangxin.ingest.topics import InvalidTopic, Topic, parse_topic
from fangxin.trace.catalogue import Catalogue
from fangxin.trace.intake import Pending, result_row, split_stored, write_results
from fangxin.trace.verdicts import VerdictError

_LOGGER = logging.getLogger(__name__)
MAX_STORED_PAYLOAD = 2048
# "module:function" called as f(session, rows) in the batch's transaction after results are
# inserted; rows are the result dicts of the batch (redeliveries included: be idempotent).
RESULT_LISTENERS: tuple[str, ...] = ("fangxin.trace.entries:on_results",)


def _listeners() -> list[Callable[[Session, list[dict[str, Any]]], None]]:
    out = []
    for spec in RESULT_LISTENERS:
        module, _, name = spec.partition(":")
        out.append(getattr(importlib.import_module(module), name))
    return out


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
class _DeviceInfo:
    site_id: str
    kind: str


class _Cache:
    """Registry and catalogue lookups cached for a few seconds: every message needs them."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.devices: dict[str, tuple[float, _DeviceInfo | None]] = {}
        self.items = Catalogue({})
        self.items_at = -1e9

    def device_infos(self, session: Session, ids: Iterable[str]) -> dict[str, _DeviceInfo | None]:
        now = time.monotonic()
        missing = {i for i in ids if i not in self.devices or now - self.devices[i][0] > self.ttl_s}
        if missing:
            rows = session.execute(
                select(Device.id, Device.site_id, Device.kind).where(
                    Device.id.in_(missing), Device.active.is_(True)
                )
            )
            found = {r.id: _DeviceInfo(r.site_id, r.kind) for r in rows}
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
    # invalid, forbidden, unknown_device or site_mismatch when rejected
    kind: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as the HTTP answer shows it (empty fields left out)."""
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(slots=True)
class _Batch:
    """Rows and points gathered from a batch before the writes."""

    results: list[Pending] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    security: list[dict[str, Any]] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    seen: dict[str, dt.datetime] = field(default_factory=dict)
    states: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)
    intervals: dict[str, int] = field(default_factory=dict)


def _result_point(row: dict[str, Any]) -> Point:
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


class Pipeline:
    """Turns batches of messages or posted results into records in the caller's transaction."""

    def __init__(self, sink: PointSink, limits: Limits | None = None, cache_ttl_s: float = 10.0):
        """Write time series to sink; parse within limits."""
        self.sink = sink
        self.limits = limits or Limits()
        self.cache = _Cache(cache_ttl_s)
        self.listeners = _listeners()

    def catalogue(self, session: Session) -> Catalogue:
        """Return the cached catalogue (edits apply within the cache's lifetime)."""
        return self.cache.catalogue(session)

    def process(
        self, session: Session, messages: Sequence[RawMessage], source: str = "mqtt"
    ) -> BatchStats:
        """Parse and store a batch; invalid messages become dead letters, never exceptions."""
        stats = BatchStats(messages=len(messages))
        batch = _Batch()
        topics: list[Topic | None] = []
        for msg in messages:
            try:
                topics.append(parse_topic(msg.topic))
            except InvalidTopic as exc:
                topics.append(None)
                self._dead(batch, msg, str(exc), source)
        infos = self.cache.device_infos(session, {t.device_id for t in topics if t})
        catalogue = self.cache.catalogue(session)
        for msg, topic in zip(messages, topics, strict=True):
            if topic is None:
                continue
            info = infos.get(topic.device_id)
            if info is None or info.site_id != topic.site_id:
                self._security(
                    batch, msg.received_at, msg.topic, topic.device_id, topic.site_id, info
                )
                continue
            self._one(batch, msg, topic, info, catalogue, source)
        self._write(session, batch, lambda msg, reason: self._dead(batch, msg, reason, source))
        stats.results = len(batch.results)
        stats.alarms = len(batch.alarms)
        stats.statuses = sum(1 for p in batch.points if p.measurement == "device_status")
        stats.states = len(batch.states)
        stats.dead_letters = len(batch.dead)
        stats.security_events = len(batch.security)
        return stats

    def process_results(
        self,
        session: Session,
        entries: Sequence[SiteResultPayload | PayloadError],
        received_at: dt.datetime,
        *,
        source: str = "http",
        scope_site: str | None = None,
    ) -> list[Outcome]:
        """Store posted results as the MQTT door would; say for each one what became of it.

        A key scoped to a site may post only for it; an unknown device or a device of another
        site is a security event, as on MQTT. The rest are stored in the caller's transaction.
        """
        outcomes = [Outcome(i) for i in range(len(entries))]
        batch = _Batch()
        valid = []
        for outcome, entry in zip(outcomes, entries, strict=True):
            if isinstance(entry, PayloadError):
                outcome.kind, outcome.error = "invalid", str(entry)
            else:
                outcome.id, outcome.device = entry.id, entry.device
                valid.append((outcome, entry))
        infos = self.cache.device_infos(session, {e.device for _, e in valid})
        catalogue = self.cache.catalogue(session)
        for outcome, entry in valid:
            where = f"http:{entry.site}/{entry.device}"
            info = infos.get(entry.device)
            if scope_site is not None and entry.site != scope_site:
                outcome.kind = "forbidden"
                outcome.error = f"this API key may post results of site {scope_site} only"
                self._security_row(
                    batch, received_at, "key_scope", where, entry.device, entry.site, outcome.error
                )
            elif info is None or info.site_id != entry.site:
                outcome.kind, outcome.error = self._security(
                    batch, received_at, where, entry.device, entry.site, info
                )
            else:
                try:
                    row = result_row(
                        entry.site, entry.device, received_at, entry, catalogue, source
                    )
                except VerdictError as exc:
                    outcome.kind, outcome.error = "invalid", f"{entry.id}: {exc}"
                    continue
                batch.results.append(Pending(row, outcome, entry.retest_of))
        batch.results, duplicates = split_stored(session, batch.results)
        for outcome in duplicates:
            outcome.status = "duplicate"

        def refuse(outcome: Outcome, reason: str) -> None:
            outcome.kind, outcome.error = "invalid", reason

        for pending in self._write(session, batch, refuse):
            outcome = pending.ref
            outcome.status, outcome.verdict = "stored", pending.row["verdict"]
        return outcomes

    def _one(
        self,
        batch: _Batch,
        msg: RawMessage,
        topic: Topic,
        info: _DeviceInfo,
        catalogue: Catalogue,
        source: str,
    ) -> None:
        try:
            elements = parse_elements(topic.channel, msg.payload, msg.received_at, self.limits)
        except PayloadError as exc:
            self._dead(batch, msg, str(exc), source)
            return
        accepted = False
        for element in elements:
            if isinstance(element, PayloadError):
                self._dead(batch, msg, str(element), source)
            elif isinstance(element, ResultPayload):
                try:
                    row = result_row(
                        topic.site_id, topic.device_id, msg.received_at, element, catalogue, source
                    )
                except VerdictError as exc:
                    self._dead(batch, msg, f"{element.id}: {exc}", source)
                    continue
                batch.results.append(Pending(row, msg, element.retest_of))
                accepted = True
            elif isinstance(element, StatusPayload):
                batch.points.append(
                    Point(
                        "device_status",
                        {"site": topic.site_id, "device": topic.device_id, "kind": info.kind},
                        element.numeric_fields(),
                        element.ts,
                    )
                )
                if element.interval_s:
                    batch.intervals[topic.device_id] = element.interval_s
                accepted = True
            elif isinstance(element, AlarmPayload):
                batch.alarms.append(
                    {
                        "device_id": topic.device_id,
                        "site_id": topic.site_id,
                        "alarm_id": element.id,
                        "ts": element.ts,
                        "received_at": msg.received_at,
                        "type": element.type,
                        "confidence": element.confidence,
                        "snapshot_url": element.snapshot_url,
                        "status": "new",
                    }
                )
                accepted = True
            else:
                batch.states[topic.device_id] = (element, msg.received_at)
                accepted = element == "online"
        # Liveness is our receive time; a retained message is old news, not a sign of life.
        if accepted and not msg.retained:
            prev = batch.seen.get(topic.device_id)
            if prev is None or prev < msg.received_at:
                batch.seen[topic.device_id] = msg.received_at

    def _dead(self, batch: _Batch, msg: RawMessage, reason: str, source: str) -> None:
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

    def _security(
        self,
        batch: _Batch,
        at: dt.datetime,
        where: str,
        device_id: str,
        site_id: str,
        info: _DeviceInfo | None,
    ) -> tuple[str, str]:
        if info is None:
            kind, detail = "unknown_device", f"device {device_id} is not registered or inactive"
        else:
            kind = "site_mismatch"
            detail = f"device {device_id} belongs to site {info.site_id}, not {site_id}"
        self._security_row(batch, at, kind, where, device_id, site_id, detail)
        return kind, detail

    def _security_row(
        self,
        batch: _Batch,
        at: dt.datetime,
        kind: str,
        where: str,
        device_id: str,
        site_id: str,
        detail: str,
    ) -> None:
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

    def _write(
        self, session: Session, batch: _Batch, on_error: Callable[[Any, str], None]
    ) -> list[Pending]:
        written = write_results(session, batch.results, on_error) if batch.results else []
        batch.results = written
        if written:
            rows = [p.row for p in written]
            for listener in self.listeners:
                listener(session, rows)
            batch.points.extend(_result_point(row) for row in rows)
        insert_ignore(session, Alarm.__table__, batch.alarms, ("device_id", "alarm_id"))
        if batch.dead:
            session.execute(insert(DeadLetter), batch.dead)
        if batch.security:
            session.execute(insert(SecurityEvent), batch.security)
        record_activity(session, batch.seen, batch.states, batch.intervals)
        self.sink.write(session, batch.points)
        return written


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
