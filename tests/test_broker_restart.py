"""The broker restarts mid-stream: the ingester reconnects, resumes its session, loses nothing."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.sim.broker import free_port, mosquitto_binary, start_broker
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import count, dumps, publish_all, publisher, register, result, wait_until
from tests.test_crash import start_ingester

N = 4000


def test_broker_restart_mid_stream(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    if mosquitto_binary() is None:
        pytest.skip("no mosquitto binary")
    site, rt = unique("m"), unique("rt")
    register(sessions, site, {rt: "rapid_test"})
    store, port = tmp_path / "broker", free_port()
    broker = start_broker(store, port)
    topic = f"fangxin/v1/{site}/{rt}/result"
    messages = [(topic, dumps(result(f"r-{i:05d}"))) for i in range(N)]
    log = tmp_path / "ingest.log"
    ingester = start_ingester(db_url, broker, unique("ingest"), log)
    try:
        time.sleep(2.0)
        with publisher(broker.url) as client:
            publish_all(client, messages[: N // 2])
        broker.stop()  # mosquitto writes its persistence file on a clean exit
        time.sleep(1.0)
        broker = start_broker(store, port)  # same store, same port
        with publisher(broker.url) as client:
            publish_all(client, messages[N // 2 :])
        assert wait_until(lambda: count(sessions, RapidTestResult) >= N, 90), log.read_text()
        time.sleep(1.0)
    finally:
        ingester.send_signal(signal.SIGTERM)
        code = ingester.wait(30)
        broker.stop()
    assert code == 0
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(RapidTestResult))
        distinct = session.scalar(select(func.count(func.distinct(RapidTestResult.result_id))))
    assert (total, distinct) == (N, N)
    text = log.read_text()
    assert "Disconnected from broker" in text
    assert "(session present: True)" in text  # the broker kept our session across its restart
