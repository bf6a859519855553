"""From raw messages to stored records: topic check, parse, verdict, dedupe, durable write.

Both doors call it: MQTT batches through process(), HTTP posts through process_results(). Each
step is a plain call in _write(): results (trace.results.intake), the entry checks they decide
(trace.certificates.entries), alarms, dead letters, security events, liveness (devices), storage
alarms, then the time-series sink.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from fangxin.contract.payloads import (
    AlarmPayload,
    Limits,
    PayloadError,
    ResultPayload,
    SiteResultPayload,
    StatusPayload,
    parse_elements,
)
from fangxin.contract.topics import InvalidTopic, Topic, parse_topic
from fangxin.db import utcnow
from fangxin.db.bulk import insert_ignore
from fangxin.devices.alarms import storage_alarms
from fangxin.devices.channels import channel_refusal
from fangxin.devices.liveness import record_activity
from fangxin.devices.models import Alarm
from fangxin.ingest.batch import (
    Batch,
    BatchStats,
    DeviceInfo,
    LookupCache,
    Outcome,
    RawMessage,
    add_dead,
    add_security,
    add_security_row,
    result_point,
)
from fangxin.ingest.models import DeadLetter, SecurityEvent
from fangxin.ingest.sinks import Point, PointSink, SqlSink
from fangxin.trace.certificates.entries import on_results as decide_waiting_entries
from fangxin.trace.results.catalogue import Catalogue
from fangxin.trace.results.intake import Pending, result_row, split_stored, write_results
from fangxin.trace.results.verdicts import VerdictError

_LOGGER = logging.getLogger(__name__)


class Pipeline:
    """Turns batches of messages or posted results into records in the caller's transaction."""

    def __init__(
        self,
        sink: PointSink,
        limits: Limits | None = None,
        cache_ttl_s: float = 10.0,
        storage_low_gb: float | None = None,
        interval_caps: Mapping[str, int] | None = None,
    ):
        """Write time series to sink; parse within limits; alarm under storage_low_gb free.

        interval_caps bound the heartbeat interval a device kind may announce (None: defaults).
        """
        self.sink = sink
        self.interval_caps = interval_caps
        self.limits = limits or Limits()
        self.cache = LookupCache(cache_ttl_s)
        self.storage_low_gb = storage_low_gb
        # The SQL sink keeps results as the records themselves: no point to build for them.
        self.result_points = not isinstance(sink, SqlSink)

    def catalogue(self, session: Session) -> Catalogue:
        """Return the cached catalogue (edits apply within the cache's lifetime)."""
        return self.cache.catalogue(session)

    def process(
        self,
        session: Session,
        messages: Sequence[RawMessage],
        source: str = "mqtt",
        prepared: Batch | None = None,
    ) -> BatchStats:
        """Parse and store a batch; invalid messages become dead letters, never exceptions.

        prepared is what prepare() made of these same messages, if the caller has it already.
        """
        batch = prepared if prepared is not None else self.prepare(session, messages, source)
        self._write(
            session, batch, lambda msg, reason: add_dead(batch, msg, reason, source), utcnow()
        )
        return BatchStats(
            messages=len(messages),
            results=len(batch.results),
            alarms=len(batch.alarms),
            statuses=sum(1 for p in batch.points if p.measurement == "device_status"),
            states=len(batch.states),
            dead_letters=len(batch.dead),
            security_events=len(batch.security),
        )

    def prepare(
        self, session: Session, messages: Sequence[RawMessage], source: str = "mqtt"
    ) -> Batch:
        """Check, parse and judge messages into the rows to write; session reads lookups only.

        The ingester prepares a batch on its network thread while the writer thread waits on
        the database with the one before: the parsing no longer waits its turn behind a commit.
        """
        batch = Batch()
        topics: list[Topic | None] = []
        for msg in messages:
            try:
                topics.append(parse_topic(msg.topic))
            except InvalidTopic as exc:
                topics.append(None)
                add_dead(batch, msg, str(exc), source)
        infos = self.cache.device_infos(session, {t.device_id for t in topics if t})
        catalogue = self.cache.catalogue(session)
        for msg, topic in zip(messages, topics, strict=True):
            if topic is None:
                continue
            info = infos.get(topic.device_id)
            if info is None or info.site_id != topic.site_id:
                add_security(
                    batch, msg.received_at, msg.topic, topic.device_id, topic.site_id, info
                )
                continue
            refusal = channel_refusal(info.kind, topic.channel)
            if refusal is not None:
                add_security_row(
                    batch,
                    msg.received_at,
                    "channel_not_allowed",
                    msg.topic,
                    topic.device_id,
                    topic.site_id,
                    refusal,
                )
                continue
            self._one(batch, msg, topic, info, catalogue, source)
        return batch

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
        batch = Batch()
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
                add_security_row(
                    batch, received_at, "key_scope", where, entry.device, entry.site, outcome.error
                )
            elif info is None or info.site_id != entry.site:
                outcome.kind, outcome.error = add_security(
                    batch, received_at, where, entry.device, entry.site, info
                )
            elif (refusal := channel_refusal(info.kind, "result")) is not None:
                outcome.kind, outcome.error = "channel_not_allowed", refusal
                add_security_row(
                    batch, received_at, outcome.kind, where, entry.device, entry.site, refusal
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

        for pending in self._write(session, batch, refuse, received_at):
            outcome = pending.ref
            outcome.status, outcome.verdict = "stored", pending.row["verdict"]
        return outcomes

    def _one(
        self,
        batch: Batch,
        msg: RawMessage,
        topic: Topic,
        info: DeviceInfo,
        catalogue: Catalogue,
        source: str,
    ) -> None:
        try:
            elements = parse_elements(topic.channel, msg.payload, msg.received_at, self.limits)
        except PayloadError as exc:
            add_dead(batch, msg, str(exc), source)
            return
        accepted = False
        for element in elements:
            if isinstance(element, PayloadError):
                add_dead(batch, msg, str(element), source)
            elif isinstance(element, ResultPayload):
                try:
                    row = result_row(
                        topic.site_id, topic.device_id, msg.received_at, element, catalogue, source
                    )
                except VerdictError as exc:
                    add_dead(batch, msg, f"{element.id}: {exc}", source)
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
                if element.storage_free_gb is not None:
                    batch.storage.append(
                        (topic.site_id, topic.device_id, element.storage_free_gb, element.ts)
                    )
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

    def _write(
        self,
        session: Session,
        batch: Batch,
        on_error: Callable[[Any, str], None],
        now: dt.datetime,
    ) -> list[Pending]:
        # `now` opens follow-ups (their 4-hour window): the HTTP door passes its app's clock.
        written = write_results(session, batch.results, on_error, now) if batch.results else []
        batch.results = written
        if written:
            rows = [p.row for p in written]
            # Entry checks waiting for a test of this lot are decided in the same transaction.
            decide_waiting_entries(session, rows)
            if self.result_points:
                batch.points.extend(result_point(row) for row in rows)
        insert_ignore(session, Alarm.__table__, batch.alarms, ("device_id", "alarm_id"))
        if batch.dead:
            session.execute(insert(DeadLetter), batch.dead)
        if batch.security:
            session.execute(insert(SecurityEvent), batch.security)
        record_activity(session, batch.seen, batch.states, batch.intervals, self.interval_caps)
        if batch.storage and self.storage_low_gb is not None:
            storage_alarms(session, batch.storage, self.storage_low_gb, now)
        self.sink.write(session, batch.points)
        return written
