"""End to end through a real broker: publish with an ordinary client, find each record once."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from paho.mqtt.enums import MQTTProtocolVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.devices.models import Device
from fangxin.ingest.consumer import Ingester
from fangxin.ingest.models import DeadLetter, SeriesPoint
from fangxin.sim.broker import RunningBroker, free_port, start_broker
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import (
    CST,
    count,
    dumps,
    publish_all,
    publisher,
    register,
    result,
    running_ingester,
    status,
    wait_until,
)

N = 500


def test_results_and_heartbeats_stored_exactly_once(
    settings: Settings, sessions: sessionmaker[Session], broker_url: str
) -> None:
    site, rt, cam = unique("m"), unique("rt"), unique("cam")
    register(sessions, site, {rt: "rapid_test", cam: "camera"})
    values = [float(i % 100) for i in range(N)]
    messages = [
        (f"fangxin/v1/{site}/{rt}/result", dumps(result(f"r-{i}", values[i]))) for i in range(N)
    ]
    start = dt.datetime.now(CST) - dt.timedelta(hours=1)
    # one heartbeat a minute: distinct timestamps, so 50 distinct points
    beats = [
        (
            f"fangxin/v1/{site}/{cam}/status",
            dumps(status(ts=(start + dt.timedelta(minutes=i)).isoformat())),
        )
        for i in range(50)
    ]
    with running_ingester(settings, broker_url), publisher(broker_url) as client:
        published_from = dt.datetime.now(dt.UTC)
        publish_all(client, messages + beats)
        # re-send a tenth of the results, as a device flushing its backlog twice would
        publish_all(client, messages[: N // 10])
        assert wait_until(lambda: count(sessions, RapidTestResult) >= N, 30)
        assert wait_until(
            lambda: count(sessions, SeriesPoint, SeriesPoint.measurement == "device_status") >= 50
        )
        stored_by = dt.datetime.now(dt.UTC)
    with sessions() as session:
        rows = session.execute(select(RapidTestResult.result_id, RapidTestResult.verdict)).all()
        assert session.scalar(select(func.count(func.distinct(RapidTestResult.result_id)))) == N
        device = session.get(Device, cam)
        assert device is not None
        # liveness is our receive time of its last heartbeat (stamped in an hour ago: ignored)
        assert device.last_seen_at is not None
        assert published_from <= device.last_seen_at <= stored_by
        assert device.deadline == device.last_seen_at + dt.timedelta(seconds=3 * 60)
    assert len(rows) == N
    expected = {
        f"r-{i}": "positive" if v >= 50 else "suspect" if v >= 40 else "negative"
        for i, v in enumerate(values)
    }
    assert dict(rows) == expected


def test_poison_messages_do_not_block_the_stream(
    settings: Settings, sessions: sessionmaker[Session], broker_url: str
) -> None:
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    topic = f"fangxin/v1/{site}/{rt}/result"
    bad = [b"{not json", dumps(result("x", value="high")), b"\xff" * 10, json.dumps([1]).encode()]
    good = [dumps(result(f"g-{i}")) for i in range(20)]
    with running_ingester(settings, broker_url), publisher(broker_url) as client:
        publish_all(client, [(topic, p) for p in bad] + [(topic, p) for p in good])
        assert wait_until(lambda: count(sessions, RapidTestResult) == 20)
        assert wait_until(lambda: count(sessions, DeadLetter, DeadLetter.topic == topic) == 4)
    with sessions() as session:
        reasons = session.scalars(select(DeadLetter.reason).where(DeadLetter.topic == topic)).all()
    assert any("invalid JSON" in r for r in reasons)
    assert any("not UTF-8" in r for r in reasons)
    assert any("valid number" in r for r in reasons)
    assert any("expected a JSON object" in r for r in reasons)


def test_falls_back_to_mqtt_311_on_a_broker_without_5(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    broker = start_broker(tmp_path / "amqtt", free_port(), prefer="amqtt")
    try:
        with running_ingester(settings, broker.url) as ingester, publisher(broker.url) as client:
            assert ingester.protocol == MQTTProtocolVersion.MQTTv311
            publish_all(
                client,
                [(f"fangxin/v1/{site}/{rt}/result", dumps(result(f"r-{i}"))) for i in range(20)],
            )
            assert wait_until(lambda: count(sessions, RapidTestResult) == 20)
    finally:
        broker.stop()


def test_memory_holds_no_more_than_receive_maximum_when_the_broker_sends_more(
    settings: Settings, sessions: sessionmaker[Session], private_mosquitto: RunningBroker
) -> None:
    # Mosquitto 2.0.11 sends past the Receive Maximum once acks flow: with a slow database the
    # ingester once held 287,000 of a 300,000 backlog. It must stop reading at its bound.
    broker_url = private_mosquitto.url  # the deployment's queue (Mosquitto's default drops)
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    limit, n = 100, 2000
    settings = replace(
        settings, ingest_max_inflight=limit, ingest_batch_size=50, ingest_client_id=unique("bound")
    )
    held: list[int] = []

    def slow_and_counted(ingester: Ingester) -> None:
        keep, store = ingester._keep, ingester._store

        def counting_keep(topic: str, payload: bytes, retained: bool, mid: int, qos: int) -> None:
            keep(topic, payload, retained, mid, qos)
            held.append(len(ingester._pending) + ingester._in_writer)

        def slow_store(handed: Any) -> None:
            time.sleep(0.02)  # a database slower than the broker: batches would pile up unread
            store(handed)

        ingester._keep = counting_keep  # type: ignore[method-assign]
        ingester._store = slow_store  # type: ignore[method-assign]

    with (
        running_ingester(settings, broker_url, slow_and_counted),
        publisher(broker_url) as client,
    ):
        publish_all(
            client,
            [(f"fangxin/v1/{site}/{rt}/result", dumps(result(f"r-{i}"))) for i in range(n)],
        )
        assert wait_until(lambda: count(sessions, RapidTestResult) >= n, 60)
    assert len(held) >= n  # every message passed through, none lost
    assert max(held) <= limit


def test_the_link_stays_up_while_memory_is_full_and_the_database_stalls(
    settings: Settings, sessions: sessionmaker[Session], private_mosquitto: RunningBroker
) -> None:
    # Full, the ingester leaves the socket unread; the broker must still hear from it.
    broker_url = private_mosquitto.url  # the deployment's queue (Mosquitto's default drops)
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    settings = replace(
        settings, ingest_max_inflight=20, ingest_batch_size=10, ingest_client_id=unique("stall")
    )
    database_back = threading.Event()

    def stalled(ingester: Ingester) -> None:
        ingester.keepalive_s = 1
        store = ingester._store

        def stalled_store(handed: Any) -> None:
            database_back.wait(60)
            store(handed)

        ingester._store = stalled_store  # type: ignore[method-assign]

    with running_ingester(settings, broker_url, stalled) as ingester:
        try:
            with publisher(broker_url) as client:
                topic = f"fangxin/v1/{site}/{rt}/result"
                publish_all(client, [(topic, dumps(result(f"r-{i}"))) for i in range(100)])
                assert wait_until(lambda: ingester._room() <= 0, 30)
                time.sleep(5)  # five keepalive periods with nothing stored
                assert ingester._connected.is_set()
                # The broker heard from us within the keepalive (Mosquitto 2.0.11 enforces its
                # side only now and then, so a dropped link alone does not show a missing ping).
                sent = ingester._client._last_msg_out  # type: ignore[union-attr]
                assert time.monotonic() - sent < ingester.keepalive_s
                database_back.set()
                assert wait_until(lambda: count(sessions, RapidTestResult) >= 100, 60)
        finally:
            database_back.set()  # else the ingester's drain at exit waits on the stalled store
    assert ingester._generation == 1  # one connection throughout: never dropped, never resumed
