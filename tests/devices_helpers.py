"""Helpers of the device tests: a kitchen fleet, messages at chosen receive times, runs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.devices import registry
from fangxin.devices.connectivity import Transition, record_transitions
from fangxin.devices.models import ConnectivityEvent, Device, IngesterRun
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.devices.sweep import sweep
from fangxin.ingest.batch import RawMessage
from fangxin.ingest.pipeline import Pipeline
from fangxin.ingest.sinks import SqlSink

CST = dt.timezone(dt.timedelta(hours=8))
# Monday 2026-11-02 00:00 in Asia/Shanghai: the origin of the hand-computed cases.
T0 = dt.datetime(2026, 11, 2, tzinfo=CST)
HOUR = 3600


def at(seconds: float) -> dt.datetime:
    """Return T0 plus some seconds, in UTC."""
    return (T0 + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)


def kitchen(
    sessions: sessionmaker[Session],
    site_id: str,
    devices: dict[str, int] | list[str],
    *,
    district: str = "新华区",
    category: str = "学校食堂",
    licence: str | None = "JY14104020000001",
    opens: str | None = None,
    closes: str | None = None,
    created: dt.datetime | None = None,
    kind: str = "camera",
) -> None:
    """Register a kitchen and its cameras ({id: interval_s} or ids) at `created` (T0 - 1 h)."""
    intervals = devices if isinstance(devices, dict) else dict.fromkeys(devices, 60)
    with sessions() as session:
        site = SiteIn(
            id=site_id,
            kind="kitchen",
            district=district,
            name=f"{site_id} 食堂",
            category=category,
            licence_no=licence,
            opens=opens,
            closes=closes,
        )
        registry.add_site(session, site)
        for device_id, interval in intervals.items():
            data = DeviceIn(id=device_id, site=site_id, kind=kind, interval_s=interval)
            registry.add_device(session, data, created or at(-HOUR))
        session.commit()


def status_body(received: dt.datetime, **extra: Any) -> bytes:
    """Return a status payload stamped with its receive time."""
    return json.dumps({"ts": received.isoformat(), **extra}).encode()


def feed(
    sessions: sessionmaker[Session],
    site_id: str,
    device_id: str,
    channel: str,
    seconds: float,
    payload: bytes | None = None,
    *,
    retained: bool = False,
) -> None:
    """Put one message, received at T0 + seconds, through the pipeline."""
    received = at(seconds)
    body = payload if payload is not None else status_body(received)
    topic = f"fangxin/v1/{site_id}/{device_id}/{channel}"
    with sessions.begin() as session:
        Pipeline(SqlSink()).process(session, [RawMessage(topic, body, received, retained)])


def beats(
    sessions: sessionmaker[Session], site_id: str, device_id: str, times: range | list[int]
) -> None:
    """Feed status heartbeats at each of the given seconds after T0, one batch each."""
    for seconds in times:
        feed(sessions, site_id, device_id, "status", seconds)


def tick(sessions: sessionmaker[Session], seconds: float, alarm_after_s: float = 1800) -> None:
    """Run one sweep tick at T0 + seconds."""
    with sessions.begin() as session:
        sweep(session, at(seconds), dt.timedelta(seconds=alarm_after_s))


def observed(
    sessions: sessionmaker[Session], *spans: tuple[float, float], door: str = "mqtt"
) -> None:
    """Record a door's runs (an ingester's by default) that observed these spans (s after T0)."""
    with sessions.begin() as session:
        for n, (start, end) in enumerate(spans):
            session.add(
                IngesterRun(
                    client_id=f"test-{door}-{n}",
                    door=door,
                    started_at=at(start),
                    last_alive_at=at(end),
                    ended_at=at(end),
                )
            )


def outages(
    sessions: sessionmaker[Session], device_id: str, *spans: tuple[float, float | None]
) -> None:
    """Store a device's history directly: online from -1 h, offline in each span."""
    items = [Transition(device_id, "online", at(-HOUR + 1), "message")]
    for start, end in spans:
        items.append(Transition(device_id, "offline", at(start), "timeout"))
        if end is not None:
            items.append(Transition(device_id, "online", at(end), "message"))
    with sessions.begin() as session:
        record_transitions(session, items)
        last = items[-1]
        device = session.get(Device, device_id)
        assert device is not None
        device.conn_state, device.conn_since = last.state, last.at


def events(sessions: sessionmaker[Session], device_id: str) -> list[tuple[str, float, str]]:
    """Return a device's events as (state, seconds after T0, cause)."""
    with sessions() as session:
        rows = session.execute(
            select(ConnectivityEvent.state, ConnectivityEvent.at, ConnectivityEvent.cause)
            .where(ConnectivityEvent.device_id == device_id)
            .order_by(ConnectivityEvent.at_s, ConnectivityEvent.id)
        ).all()
    return [(s, (a - at(0)).total_seconds(), c) for s, a, c in rows]


def feed_at(
    sessions: sessionmaker[Session], site_id: str, device_id: str, when: dt.datetime
) -> None:
    """Put one status heartbeat received at `when` through the pipeline."""
    topic = f"fangxin/v1/{site_id}/{device_id}/status"
    with sessions.begin() as session:
        Pipeline(SqlSink()).process(session, [RawMessage(topic, status_body(when), when)])


def seed_targets(sessions: sessionmaker[Session]) -> None:
    """Put back the plan targets migration 0002 seeds (conftest's PostgreSQL wipe removes them)."""
    from fangxin.devices.models import CoverageTarget

    with sessions.begin() as session:
        if session.scalar(select(CoverageTarget.code).limit(1)) is not None:
            return
        session.add_all(
            [
                CoverageTarget(
                    code="mclz",
                    name="明厨亮灶覆盖率(持证餐饮单位)",
                    metric="coverage",
                    categories=[],
                    target=0.9,
                    due=dt.date(2024, 12, 31),
                ),
                CoverageTarget(
                    code="internet_mclz",
                    name="互联网+明厨亮灶覆盖率",
                    metric="coverage",
                    categories=["中央厨房", "集体用餐配送单位", "大型餐饮"],
                    target=1.0,
                ),
                CoverageTarget(
                    code="online_rate",
                    name="设备在线率",
                    metric="online_rate",
                    categories=[],
                    target=0.9,
                ),
            ]
        )
