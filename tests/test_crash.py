"""Crash safety on mosquitto: kill -9 the ingester mid-stream, restart, nothing lost or doubled."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.ingest.models import SeriesPoint
from fangxin.sim.broker import RunningBroker
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import count, dumps, publisher, register, result, status, wait_until
from tests.ingest_process import start_ingester, start_subscribed, stop, wait_subscribed

__all__ = ["start_ingester"]  # other branches' tests import it from here

N = 20_000  # messages: 18,000 results and 2,000 heartbeats
RESULTS = N - N // 10
T0 = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def stream_message(site: str, device: str, i: int) -> tuple[str, bytes]:
    """Return the i-th message: a heartbeat every tenth, else a result."""
    if i % 10 == 9:
        ts = (T0 + dt.timedelta(seconds=i)).isoformat()
        return f"fangxin/v1/{site}/{device}/status", dumps(status(ts=ts))
    return f"fangxin/v1/{site}/{device}/result", dumps(result(f"r-{i:05d}", float(i % 100)))


def publish_stream(broker_url: str, site: str, device: str, killed: threading.Event) -> None:
    """Publish the first half, wait for the kill, publish the rest while the ingester restarts."""
    with publisher(broker_url) as client:
        infos = []
        for i in range(N):
            if i == N // 2:
                assert killed.wait(120), "the ingester was never killed"
            infos.append(client.publish(*stream_message(site, device, i), qos=1))
        for info in infos:
            info.wait_for_publish(60)


def test_kill_9_mid_stream_loses_and_doubles_nothing(
    db_url: str, sessions: sessionmaker[Session], private_mosquitto: RunningBroker, tmp_path: Path
) -> None:
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    client_id = unique("ingest")
    log = tmp_path / "ingest.log"
    first = start_subscribed(sessions, db_url, private_mosquitto, client_id, log)
    try:
        killed = threading.Event()
        stream = threading.Thread(
            target=publish_stream, args=(private_mosquitto.url, site, rt, killed)
        )
        stream.start()
        assert wait_until(lambda: count(sessions, RapidTestResult) >= 3000, 60), log.read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed.set()
        stored_at_kill = count(sessions, RapidTestResult)
        second = start_ingester(db_url, private_mosquitto, client_id, log)
        try:
            wait_subscribed(sessions, second, client_id, log, runs_before=1)
            stream.join(120)
            assert wait_until(lambda: count(sessions, RapidTestResult) >= RESULTS, 120), (
                log.read_text()
            )
        finally:
            # drained and stopped: whatever it still had is stored before the counts below
            assert stop(second) == 0
    finally:
        if first.poll() is None:
            first.kill()
    # killed mid-stream: with part of the first half stored and all of the second half unsent
    assert stored_at_kill < RESULTS // 2, "the first half was all stored before the kill"
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(RapidTestResult))
        distinct = session.scalar(select(func.count(func.distinct(RapidTestResult.result_id))))
    assert (total, distinct) == (RESULTS, RESULTS)
    assert count(sessions, SeriesPoint, SeriesPoint.measurement == "device_status") == N - RESULTS


def test_sigterm_drains_and_exits_0(
    db_url: str, sessions: sessionmaker[Session], private_mosquitto: RunningBroker, tmp_path: Path
) -> None:
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    client_id, log = unique("ingest"), tmp_path / "ingest.log"
    proc = start_subscribed(sessions, db_url, private_mosquitto, client_id, log)
    with publisher(private_mosquitto.url) as client:
        infos = [
            client.publish(f"fangxin/v1/{site}/{rt}/result", dumps(result(f"s-{i}")), qos=1)
            for i in range(2000)
        ]
        for info in infos:
            info.wait_for_publish(30)
    assert wait_until(lambda: count(sessions, RapidTestResult) > 0, 30)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert "Ingester stopped" in log.read_text()
    # Whatever the drain left unacked waits in the persistent session: a restart stores the rest.
    again = start_subscribed(sessions, db_url, private_mosquitto, client_id, log)
    try:
        assert wait_until(lambda: count(sessions, RapidTestResult) >= 2000, 120), log.read_text()
    finally:
        assert stop(again) == 0
    assert count(sessions, RapidTestResult) == 2000
