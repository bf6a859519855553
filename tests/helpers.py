"""Test helpers: registering fleets, building payloads, waiting, running an ingester."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import utcnow
from fangxin.devices import registry
from fangxin.devices.schemas import DeviceIn, SiteIn
from fangxin.ingest.consumer import Ingester
from fangxin.ingest.mqtt_url import BrokerAddress
from fangxin.ingest.runner import build_ingester

CST = dt.timezone(dt.timedelta(hours=8))


def register(
    sessions: sessionmaker[Session], site_id: str, devices: dict[str, str], kind: str = "market"
) -> None:
    """Register a site and its devices ({device_id: kind})."""
    with sessions() as session:
        registry.add_site(
            session, SiteIn(id=site_id, kind=kind, district="新华区", name="测试市场")
        )
        for device_id, device_kind in devices.items():
            registry.add_device(
                session,
                DeviceIn(id=device_id, site=site_id, kind=device_kind),
                utcnow(),
            )
        session.commit()


def result(rid: str, value: object = 37.5, **extra: Any) -> dict[str, Any]:
    """Build a `result` payload with a current timestamp."""
    body: dict[str, Any] = {
        "id": rid,
        "ts": dt.datetime.now(CST).isoformat(timespec="milliseconds"),
        "item": "pesticide-ache",
        "value": value,
        "unit": "%",
        "sample": {"name": "菠菜", "category": "蔬菜", "stall": "A-12"},
        "tester": "张三",
        "reagent_lot": "R2411",
    }
    body.update(extra)
    return body


def status(**extra: Any) -> dict[str, Any]:
    """Build a `status` payload with a current timestamp."""
    body: dict[str, Any] = {
        "ts": dt.datetime.now(CST).isoformat(timespec="milliseconds"),
        "interval_s": 60,
        "fps": 25,
        "bitrate_kbps": 2048,
        "storage_free_gb": 812.5,
        "temp_c": 41.0,
    }
    body.update(extra)
    return body


def dumps(body: Any) -> bytes:
    """Encode a payload as the devices do."""
    return json.dumps(body, ensure_ascii=False).encode()


def count(sessions: sessionmaker[Session], model: Any, *where: Any) -> int:
    """Count rows of a model matching the conditions."""
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 20.0, step_s: float = 0.05
) -> bool:
    """Poll until the predicate holds or the timeout passes; return whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


@contextmanager
def running_ingester(
    settings: Settings,
    broker_url: str,
    setup: Callable[[Ingester], None] | None = None,
    **kwargs: Any,
) -> Iterator[Ingester]:
    """Run an ingester in a thread for the duration of the block; stop and drain at exit.

    setup(ingester) runs before it connects (a test's slow store, a short keepalive).
    """
    settings = replace(settings, mqtt_url=broker_url, session_expiry_s=120)
    ingester = build_ingester(settings, **kwargs)
    if setup is not None:
        setup(ingester)
    ingester.start()
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    try:
        yield ingester
    finally:
        ingester.stop()
        thread.join(30)
        assert not thread.is_alive(), "ingester did not stop"


@contextmanager
def publisher(broker_url: str, client_id: str = "") -> Iterator[mqtt.Client]:
    """Connect an ordinary MQTT client for the block."""
    address = BrokerAddress.parse(broker_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
    """Publish messages and wait until the broker has them all."""
    infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(30)


@contextmanager
def counted(engine: Engine, commits: bool = False) -> Iterator[list[str]]:
    """Collect the SQL statements the engine runs inside the block (and "COMMIT"s if asked)."""
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def commit(_conn: Any) -> None:
        statements.append("COMMIT")

    event.listen(engine, "before_cursor_execute", before)
    if commits:
        event.listen(engine, "commit", commit)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        if commits:
            event.remove(engine, "commit", commit)
