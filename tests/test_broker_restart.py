"""The broker restarts mid-stream: the ingester reconnects, resumes its session, loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.sim.broker import free_port, mosquitto_binary, start_broker
from fangxin.trace.results.models import RapidTestResult
from tests.conftest import unique
from tests.helpers import count, dumps, publish_all, publisher, register, result, wait_until
from tests.ingest_process import start_subscribed, stop

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
    ingester = start_subscribed(sessions, db_url, broker, unique("ingest"), log)
    try:
        with publisher(broker.url) as client:
            publish_all(client, messages[: N // 2])
        broker.stop()  # mosquitto writes its persistence file on a clean exit
        broker = start_broker(store, port)  # same store, same port; returns once it listens
        with publisher(broker.url) as client:
            publish_all(client, messages[N // 2 :])
        assert wait_until(lambda: count(sessions, RapidTestResult) >= N, 120), log.read_text()
    finally:
        code = stop(ingester)  # drained: anything still arriving is counted below
        broker.stop()
    assert code == 0
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(RapidTestResult))
        distinct = session.scalar(select(func.count(func.distinct(RapidTestResult.result_id))))
    assert (total, distinct) == (N, N)
    text = log.read_text()
    assert "Disconnected from broker" in text
    assert "(session present: True)" in text  # the broker kept our session across its restart
