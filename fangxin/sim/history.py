"""30 days of simulated history for the demo, written in bulk through the domain functions."""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

from sqlalchemy.orm import Session

from fangxin.config import Settings
from fangxin.contract.payloads import SiteResultPayload
from fangxin.db.bulk import insert_ignore
from fangxin.devices.connectivity import Transition, record_transitions
from fangxin.devices.models import Alarm, IngesterRun, Site
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import Point, SqlSink
from fangxin.sim.simulator import demo_fleet
from fangxin.trace.certificates import issuance, subjects
from fangxin.trace.certificates.entries import check_entry
from fangxin.trace.certificates.models import Certificate, Subject
from fangxin.trace.certificates.schemas import CertificateIn, EntryIn, SubjectIn
from fangxin.trace.certificates.signing import signer_from_settings

_LOGGER = logging.getLogger(__name__)
DAYS = 30
SAMPLES = (
    ("菠菜", "蔬菜"),
    ("小白菜", "蔬菜"),
    ("韭菜", "蔬菜"),
    ("芹菜", "蔬菜"),
    ("豇豆", "蔬菜"),
)
AI_ALARMS = ("no_chef_hat", "no_mask", "smoking", "rodent")
STATUSES = ("closed", "closed", "rectifying", "notified", "new")
BEAT_DAYS = 3
BEAT_EVERY = dt.timedelta(hours=2)
SUBJECT = SubjectIn(
    id="s-demo",
    kind="producer",
    name="郏县绿源蔬菜合作社",
    contact="0375-1234567",
    district="郏县",
)


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the history seeded: a sample certificate to print and scan."""

    certificate_number: str
    certificate_code: str


def _results(session: Session, rng: random.Random, start: dt.datetime, now: dt.datetime) -> int:
    """Post each market's rapid tests day by day through the pipeline the doors use."""
    pipeline = Pipeline(SqlSink())
    markets = [s for s in demo_fleet()[0] if s.kind == "market"]
    stored = 0
    for day in range(DAYS):
        base = start + dt.timedelta(days=day, hours=1)
        batch: list[SiteResultPayload] = []
        for market in markets:
            for n in range(rng.randint(8, 16)):
                ts = base + dt.timedelta(minutes=20 * n + rng.randint(0, 15))
                if ts >= now:
                    continue
                name, category = rng.choice(SAMPLES)
                value = round(rng.choice([rng.uniform(5, 38)] * 12 + [rng.uniform(40, 75)]), 1)
                payload = {
                    "id": f"h-{market.id}-{day:02d}-{n:02d}",
                    "ts": ts.isoformat(),
                    "item": "pesticide-ache",
                    "value": value,
                    "unit": "%",
                    "sample": {"name": name, "category": category, "stall": f"A-{n + 1:02d}"},
                    "tester": "张三",
                    "site": market.id,
                    "device": f"rt-{market.id}",
                }
                batch.append(SiteResultPayload.model_validate(payload))
        if batch:
            received = max(p.ts for p in batch) + dt.timedelta(seconds=5)
            outcomes = pipeline.process_results(session, batch, received, source="demo")
            stored += sum(o.status == "stored" for o in outcomes)
    return stored


def _cameras(session: Session, rng: random.Random, start: dt.datetime, now: dt.datetime) -> int:
    """Write each camera's online and offline periods, and AI alarms in various 整改 states."""
    transitions: list[Transition] = []
    alarms: list[dict[str, object]] = []
    cameras = [d for d in demo_fleet()[1] if d.kind == "camera"]
    for camera in cameras:
        t = start + dt.timedelta(minutes=1)
        transitions.append(Transition(camera.id, "online", t, "message"))
        while True:
            t += dt.timedelta(hours=rng.uniform(10, 60))
            back = t + dt.timedelta(minutes=rng.uniform(5, 180))
            if back >= now - dt.timedelta(minutes=10):
                break
            transitions.append(Transition(camera.id, "offline", t, rng.choice(["timeout", "lwt"])))
            transitions.append(Transition(camera.id, "online", back, "message"))
            t = back
        for n in range(rng.randint(4, 10)):
            ts = start + dt.timedelta(seconds=rng.uniform(3600, (now - start).total_seconds()))
            status = rng.choice(STATUSES)
            alarms.append(
                {
                    "device_id": camera.id,
                    "site_id": camera.site,
                    "alarm_id": f"h-{camera.id}-{n}",
                    "ts": ts,
                    "received_at": ts,
                    "type": rng.choice(AI_ALARMS),
                    "confidence": round(rng.uniform(0.8, 0.99), 2),
                    "status": status,
                    "notice_no": None if status == "new" else f"ZG{ts:%Y%m%d}-{camera.id}-{n}",
                    "resolution": "rectified" if status == "closed" else None,
                }
            )
    record_transitions(session, transitions)
    insert_ignore(session, Alarm.__table__, alarms, ["device_id", "alarm_id"])
    return len(transitions)


def _heartbeats(session: Session, rng: random.Random, now: dt.datetime) -> int:
    """Write a few days of each camera's heartbeats (device_status points, as ingested)."""
    points = []
    for camera in (d for d in demo_fleet()[1] if d.kind == "camera"):
        tags = {"site": camera.site, "device": camera.id, "kind": camera.kind}
        for n in range(1, BEAT_DAYS * dt.timedelta(days=1) // BEAT_EVERY + 1):
            fields = {
                "interval_s": float(camera.interval_s),
                "fps": 25.0,
                "bitrate_kbps": round(rng.uniform(1800, 2200), 1),
                "storage_free_gb": round(rng.uniform(600, 900), 1),
                "temp_c": round(rng.uniform(35, 48), 1),
            }
            at = now - n * BEAT_EVERY + dt.timedelta(seconds=rng.randint(0, 59))
            points.append(Point("device_status", tags, fields, at.replace(microsecond=0)))
    SqlSink().write(session, points)
    return len(points)


def _certificates(session: Session, settings: Settings, now: dt.datetime) -> Certificate:
    """Issue a few 合格证 of a demo producer and check them in at the first market."""
    subject = session.get(Subject, SUBJECT.id) or subjects.add_subject(session, SUBJECT)
    signer = signer_from_settings(settings)
    market = session.get(Site, "m-001")
    assert market is not None
    first: Certificate | None = None
    for n, product in enumerate(("菠菜", "小白菜", "韭菜", "芹菜", "豇豆", "菠菜")):
        at = now - dt.timedelta(days=2 * (6 - n), hours=3)
        data = CertificateIn.model_validate(
            {
                "subject": subject.id,
                "product": product,
                "quantity": 50,
                "unit": "kg",
                "origin": "河南省平顶山市郏县",
                "basis": ["self_test"],
            }
        )
        cert = issuance.issue(session, data, subject, signer, at, settings.timezone)
        entry = EntryIn(certificate=cert.code, product=product, quantity=50, unit="kg")
        check_entry(session, market, entry, at + dt.timedelta(hours=2), None)
        first = first or cert
    assert first is not None
    return first


def seed_history(session: Session, settings: Settings, now: dt.datetime) -> Seeded:
    """Write 30 days of results, camera outages, alarms, heartbeats, certificates and entries."""
    rng = random.Random(16)
    start = now - dt.timedelta(days=DAYS)
    # the ingester "observed" the month, except a 40-minute stop three days ago (unknown time)
    gap = now - dt.timedelta(days=3)
    session.add(IngesterRun(client_id="demo-history", started_at=start, last_alive_at=gap))
    resumed = gap + dt.timedelta(minutes=40)
    session.add(IngesterRun(client_id="demo-history", started_at=resumed, last_alive_at=now))
    results = _results(session, rng, start, now)
    events = _cameras(session, rng, start, now)
    beats = _heartbeats(session, rng, now)
    cert = _certificates(session, settings, now)
    _LOGGER.info(
        "demo history: %d results, %d connectivity events, %d heartbeats", results, events, beats
    )
    return Seeded(cert.number, cert.code)
