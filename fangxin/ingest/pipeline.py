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
    StatusPayload,
    parse_elements,
)
from fangxin.ingest.sinks import Point, PointSink
from fangxin.ingest.sql import insert_ignore
from fangxin.ingest.topics import InvalidTopic, Topic, parse_topic
from fangxin.trace.models import RapidTestResult, TestItem
from fangxin.trace.verdicts import ItemRule, VerdictError, derive_verdict

_LOGGER = logging.getLogger(__name__)
MAX_STORED_PAYLOAD = 2048
# "module:function" called as f(session, rows) in the batch's transaction after results are
# inserted; rows are the result dicts of the batch (redeliveries included: be idempotent).
RESULT_LISTENERS: tuple[str, ...] = ()


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
        self.items: dict[str, ItemRule] = {}
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

    def rules(self, session: Session) -> dict[str, ItemRule]:
        if time.monotonic() - self.items_at > self.ttl_s:
            self.items = {
                item.code: ItemRule(
                    item.code,
                    item.quantitative,
                    item.comparator,
                    item.positive_threshold,
                    item.suspect_from,
                )
                for item in session.scalars(select(TestItem))
            }
            self.items_at = time.monotonic()
        return self.items


def truncate_payload(payload: bytes) -> str:
    """Return the payload as text, cut to what a dead-letter row keeps."""
    return payload[:MAX_STORED_PAYLOAD].decode("utf-8", errors="replace")


@dataclass(slots=True)
class _Batch:
    """Rows and points gathered from a batch before the writes."""

    results: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    security: list[dict[str, Any]] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    seen: dict[str, dt.datetime] = field(default_factory=dict)
    states: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)
    intervals: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """Turns batches of raw messages into records in one transaction owned by the caller."""

    def __init__(self, sink: PointSink, limits: Limits | None = None, cache_ttl_s: float = 10.0):
        """Write time series to sink; parse within limits."""
        self.sink = sink
        self.limits = limits or Limits()
        self.cache = _Cache(cache_ttl_s)
        self.listeners = _listeners()

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
        rules = self.cache.rules(session)
        for msg, topic in zip(messages, topics, strict=True):
            if topic is None:
                continue
            info = infos.get(topic.device_id)
            if info is None or info.site_id != topic.site_id:
                self._security(batch, msg, topic, info)
                continue
            self._one(batch, msg, topic, info, rules, source)
        self._write(session, batch)
        stats.results = len(batch.results)
        stats.alarms = len(batch.alarms)
        stats.statuses = sum(1 for p in batch.points if p.measurement == "device_status")
        stats.states = len(batch.states)
        stats.dead_letters = len(batch.dead)
        stats.security_events = len(batch.security)
        return stats

    def _one(
        self,
        batch: _Batch,
        msg: RawMessage,
        topic: Topic,
        info: _DeviceInfo,
        rules: dict[str, ItemRule],
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
                accepted |= self._result(batch, msg, topic, element, rules, source)
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

    def _result(
        self,
        batch: _Batch,
        msg: RawMessage,
        topic: Topic,
        result: ResultPayload,
        rules: dict[str, ItemRule],
        source: str,
    ) -> bool:
        rule = rules.get(result.item)
        if rule is None:
            self._dead(
                batch, msg, f"{result.id}: item {result.item!r} is not in the catalogue", source
            )
            return False
        try:
            verdict = derive_verdict(rule, result.value, result.verdict)
        except VerdictError as exc:
            self._dead(batch, msg, f"{result.id}: {exc}", source)
            return False
        sample = result.sample
        batch.results.append(
            {
                "device_id": topic.device_id,
                "site_id": topic.site_id,
                "result_id": result.id,
                "ts": result.ts,
                "received_at": msg.received_at,
                "item_code": result.item,
                "value": result.value,
                "unit": result.unit,
                "sample_name": sample.name,
                "sample_category": sample.category,
                "stall": sample.stall,
                "certificate": sample.certificate,
                "tester": result.tester,
                "reagent_lot": result.reagent_lot,
                "verdict": verdict,
                "device_verdict": result.verdict,
                "verdict_mismatch": result.verdict is not None and result.verdict != verdict,
                "source": source,
            }
        )
        fields: dict[str, float | str] = {"id": result.id}
        if result.value is not None:
            fields["value"] = float(result.value)
        batch.points.append(
            Point(
                "rapid_test",
                {
                    "site": topic.site_id,
                    "device": topic.device_id,
                    "item": result.item,
                    "verdict": verdict,
                },
                fields,
                result.ts,
                key=result.id,
            )
        )
        return True

    def _dead(self, batch: _Batch, msg: RawMessage, reason: str, source: str) -> None:
        _LOGGER.info("Dead letter on %s: %s", msg.topic, reason)
        batch.dead.append(
            {
                "received_at": msg.received_at,
                "source": source,
                "topic": msg.topic[:300],
                "payload": truncate_payload(msg.payload),
                "reason": reason,
            }
        )

    def _security(
        self, batch: _Batch, msg: RawMessage, topic: Topic, info: _DeviceInfo | None
    ) -> None:
        if info is None:
            kind, detail = (
                "unknown_device",
                f"device {topic.device_id} is not registered or inactive",
            )
        else:
            kind = "site_mismatch"
            detail = f"device {topic.device_id} belongs to site {info.site_id}, not {topic.site_id}"
        _LOGGER.warning("Security event %s on %s: %s", kind, msg.topic, detail)
        batch.security.append(
            {
                "at": msg.received_at,
                "kind": kind,
                "topic": msg.topic[:300],
                "device_id": topic.device_id,
                "site_id": topic.site_id,
                "detail": detail,
            }
        )

    def _write(self, session: Session, batch: _Batch) -> None:
        insert_ignore(session, RapidTestResult.__table__, batch.results, ("device_id", "result_id"))
        if batch.results:
            for listener in self.listeners:
                listener(session, batch.results)
        insert_ignore(session, Alarm.__table__, batch.alarms, ("device_id", "alarm_id"))
        if batch.dead:
            session.execute(insert(DeadLetter), batch.dead)
        if batch.security:
            session.execute(insert(SecurityEvent), batch.security)
        record_activity(session, batch.seen, batch.states, batch.intervals)
        self.sink.write(session, batch.points)


def dead_letter(session: Session, msg: RawMessage, reason: str, source: str = "mqtt") -> None:
    """Record one message as refused (used when storing it failed in a way parsing missed)."""
    session.add(
        DeadLetter(
            received_at=msg.received_at,
            source=source,
            topic=msg.topic[:300],
            payload=truncate_payload(msg.payload),
            reason=reason,
        )
    )
